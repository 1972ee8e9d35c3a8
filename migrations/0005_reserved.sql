-- Placeholder for the migration number reserved for another branch, so
-- that 0006 builds on its own (the version list has no gaps). Replaced by
-- the real 0005 at merge.
SELECT 1;
