-- social.pending_requests: one page and the total in one call.
SELECT id, address, created_at, message, total FROM social.pending_requests(:me, :limit, 0);
