-- Reference strategy, GetFriends page (social-service-ea getFriendsBaseQuery): the OR on both
-- address columns, active only, blocks filtered, newest friendship first.  The service runs
-- ref_friends_count.sql beside it for the total.
SELECT DISTINCT
	CASE WHEN f.address_requester = :me THEN f.address_requested
		 ELSE f.address_requester END AS address,
	created_at
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
										ELSE f.address_requester END))
ORDER BY f.created_at DESC
OFFSET 0 LIMIT :limit;
