// railsdeploy test app, release {{release}}
window.APP_RELEASE = "{{release}}";
document.documentElement.dataset.release = window.APP_RELEASE;
