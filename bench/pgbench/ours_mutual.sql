-- social.mutual_friends: one page and the total in one call.
SELECT address, total FROM social.mutual_friends(:me, :other, :limit, 0);
