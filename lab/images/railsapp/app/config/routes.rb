Rails.application.routes.draw do
  root "notes#index"
  resources :notes, only: %i[index create]
  get "up" => "health#show"
  get "version" => "health#version"
end
