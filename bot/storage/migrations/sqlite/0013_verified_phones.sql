-- Whether a member's phone is known to be theirs: shared as their own contact on Telegram, or
-- the WhatsApp number they write from; a typed number is not. Only a verified number may link
-- another app's identity to the member (one person across apps).
ALTER TABLE customers ADD COLUMN phone_verified INTEGER NOT NULL DEFAULT 0;
ALTER TABLE registration_drafts ADD COLUMN phone_verified INTEGER NOT NULL DEFAULT 0;
