-- Owners come from the configuration, so nothing stored their language: alerts to them went
-- out in the shop's default language. The language they last wrote in is kept here.
CREATE TABLE owner_languages (
    channel TEXT NOT NULL,
    channel_user_id TEXT NOT NULL,
    language TEXT NOT NULL,
    PRIMARY KEY (channel, channel_user_id)
) WITHOUT ROWID;
