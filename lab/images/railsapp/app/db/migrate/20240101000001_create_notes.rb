# The same versions and tables as the lab's test app (lab/images/testapp): either app runs on the other's database.
class CreateNotes < ActiveRecord::Migration[6.1]
  def change
    create_table :notes do |t|
      t.text :text, null: false
      t.column :created_at, :timestamptz, null: false, default: -> { "now()" }
    end
  end
end
