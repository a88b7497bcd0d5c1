-- social.friends: one page and the total in one call.
SELECT address, total FROM social.friends(:me, :limit, 0);
