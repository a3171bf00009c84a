# Background jobs, processed by bin/jobs (the worker). The same table as the test app's (lab/images/testapp).
class CreateJobs < ActiveRecord::Migration[6.1]
  def change
    create_table :jobs do |t|
      t.bigint :note_id
      t.integer :seconds, null: false, default: 0
      t.column :enqueued_at, :timestamptz, null: false, default: -> { "now()" }
      t.column :started_at, :timestamptz
      t.column :finished_at, :timestamptz
      t.text :worker
    end
  end
end
