# GET /up answers 200 only while the database answers (the load balancer's and the deploy's health check);
# GET /version names the release.
class HealthController < ActionController::Base
  def show
    ActiveRecord::Base.connection.select_value("SELECT 1")
    render plain: "ok"
  rescue StandardError => e
    render plain: "database unavailable (#{e.class})\n", status: :service_unavailable
  end

  def version
    render plain: ENV.fetch("APP_REVISION", "unknown")
  end
end
