# A JSON API for jobs: POST /jobs enqueues one (seconds: how long it works, at most 120), GET /jobs/:id reads it.
class JobsController < ActionController::API
  def create
    job = Job.create!(seconds: params.fetch(:seconds, 0).to_i.clamp(0, 120))
    render json: job.reload, status: :created
  end

  def show
    render json: Job.find(params[:id])
  end
end
