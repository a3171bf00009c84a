# No Gemfile, no Bundler: Rails, Puma and pg come from Debian's packages (rubygems-integration registers them).
