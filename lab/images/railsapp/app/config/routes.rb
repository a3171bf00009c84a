Rails.application.routes.draw do
  root "notes#index"
  resources :notes, only: %i[index create]
  resources :jobs, only: %i[create show]
  get "up" => "health#show"
  get "version" => "health#version"
end
