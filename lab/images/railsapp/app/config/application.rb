require_relative "boot"

require "rails"
require "active_record/railtie"
require "action_controller/railtie"
require "action_view/railtie"
require "sprockets/railtie"

module Notes
  # The lab's real Rails application: a page of notes read from PostgreSQL and a form that writes one.
  class Application < Rails::Application
    config.load_defaults 6.1
    config.time_zone = "UTC"
  end
end
