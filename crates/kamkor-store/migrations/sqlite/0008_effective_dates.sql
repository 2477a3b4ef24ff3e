-- Issue 4 item 5 (seed 000 §20): a change may take effect on another day than the one it is
-- recorded; the entry carries that date (NULL: the day it was recorded).
ALTER TABLE changes ADD COLUMN effective_on TEXT;
