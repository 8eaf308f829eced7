-- A campaign may carry a photo (its message is then the photo's caption), kept here as the
-- owner sent it, so that each app can deliver it whatever app it came from.
ALTER TABLE campaigns ADD COLUMN photo BLOB;
