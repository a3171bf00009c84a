Rails.application.configure do
  config.cache_classes = true
  config.eager_load = true
  config.consider_all_requests_local = false
  config.action_controller.perform_caching = true

  # The app serves its own fingerprinted assets; with ASSET_HOST (the CDN) the pages name them there instead.
  config.public_file_server.enabled = true
  config.public_file_server.headers = { "Cache-Control" => "public, max-age=31536000, immutable" }
  config.asset_host = ENV["ASSET_HOST"].presence
  config.assets.compile = false

  config.log_level = :info
  config.log_tags = [:request_id]
  config.logger = ActiveSupport::TaggedLogging.new(ActiveSupport::Logger.new($stdout))
  config.active_support.deprecation = :silence
  config.active_record.dump_schema_after_migration = false
end
