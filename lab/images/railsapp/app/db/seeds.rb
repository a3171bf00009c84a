# Idempotent: a note already there is kept, not written twice.
[
  "Welcome to the railsdeploy lab.",
  "This note was written by bin/rails db:seed.",
  "Rows written here must survive a restart of PostgreSQL.",
].each { |text| Note.find_or_create_by!(text: text) }
