-- Reference strategy, GetFriends total (getFriendsBaseQuery with onlyCount).
SELECT DISTINCT COUNT(*)
FROM ref.friendships f
WHERE (f.address_requester = :me OR f.address_requested = :me)
  AND f.is_active = true
  AND NOT EXISTS (
	SELECT 1 FROM ref.blocks b
	WHERE (b.blocker_address = :me
		   AND b.blocked_address = CASE WHEN f.address_requester = :me THEN f.address_requested
										ELSE f.address_requester END)
	   OR (b.blocked_address = :me
		   AND b.blocker_address = CASE WHEN f.address_requester = :me THEN f.address_requested
										ELSE f.address_requester END));
