# A background job: enqueued by the web app (a saved note, POST /jobs), processed by bin/jobs.
class Job < ApplicationRecord
  belongs_to :note, optional: true
end
