class Note < ApplicationRecord
  validates :text, presence: true, length: { maximum: 500 }
end
