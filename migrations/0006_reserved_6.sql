-- 0006: placeholder on the irc branch only. Migration 0006 is reserved
-- for another branch; the lead drops this file when merging (the embed
-- script wants versions without gaps).
SELECT 1;
