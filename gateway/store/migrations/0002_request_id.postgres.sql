-- The X-Request-ID of the request that created a job; sent again on its outbound deliveries.
ALTER TABLE jobs ADD COLUMN request_id TEXT;
