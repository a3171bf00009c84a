// The form's field gets the focus when the page opens.
document.addEventListener("DOMContentLoaded", function () {
  var field = document.getElementById("note_text");
  if (field) { field.focus(); }
});
