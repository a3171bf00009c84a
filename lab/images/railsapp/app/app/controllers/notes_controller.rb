# The page: the newest notes read from PostgreSQL, and a form that writes one.
class NotesController < ApplicationController
  def index
    @note = Note.new
    load_notes
    respond_to do |format|
      format.html
      format.json { render json: Note.order(:id) }
    end
  end

  def create
    @note = Note.new(params.require(:note).permit(:text))
    if @note.save
      Job.create!(note_id: @note.id)
      redirect_to root_path, notice: "Saved note #{@note.id}; a worker will process it."
    else
      load_notes
      render :index, status: :unprocessable_entity
    end
  end

  private

  def load_notes
    @count = Note.count
    @notes = Note.order(id: :desc).limit(50)
    @jobs = Job.order(id: :desc).limit(10)
  end
end
