class CreateVisits < ActiveRecord::Migration[6.1]
  def change
    create_table :visits do |t|
      t.text :path, null: false, default: "/"
      t.column :created_at, :timestamptz, null: false, default: -> { "now()" }
    end
  end
end
