-- Reference strategy, GetMutualFriends total (getMutualFriendsBaseQuery with onlyCount).
WITH friendsA AS (
	SELECT CASE WHEN f_a.address_requester = :me THEN f_a.address_requested
				ELSE f_a.address_requester END AS address
	FROM ref.friendships f_a
	WHERE (f_a.address_requester = :me OR f_a.address_requested = :me)
	  AND f_a.is_active = true
	  AND NOT EXISTS (
		SELECT 1 FROM ref.blocks b
		WHERE (b.blocker_address = :me
			   AND b.blocked_address = CASE WHEN f_a.address_requester = :me
											THEN f_a.address_requested
											ELSE f_a.address_requester END)
		   OR (b.blocked_address = :me
			   AND b.blocker_address = CASE WHEN f_a.address_requester = :me
											THEN f_a.address_requested
											ELSE f_a.address_requester END))
)
SELECT COUNT(address)
FROM friendsA f_b
WHERE f_b.address IN (
	SELECT CASE WHEN f_b.address_requester = :other THEN f_b.address_requested
				ELSE f_b.address_requester END AS address
	FROM ref.friendships f_b
	WHERE (f_b.address_requester = :other OR f_b.address_requested = :other)
	  AND f_b.is_active = true
	  AND NOT EXISTS (
		SELECT 1 FROM ref.blocks b
		WHERE (b.blocker_address = :other
			   AND b.blocked_address = CASE WHEN f_b.address_requester = :other
											THEN f_b.address_requested
											ELSE f_b.address_requester END)
		   OR (b.blocked_address = :other
			   AND b.blocker_address = CASE WHEN f_b.address_requester = :other
											THEN f_b.address_requested
											ELSE f_b.address_requester END)));
