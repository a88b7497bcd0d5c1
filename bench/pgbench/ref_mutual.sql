-- Reference strategy, GetMutualFriends page (social-service-ea getMutualFriendsBaseQuery):
-- friends of A, each via the OR on both address columns with the blocks filter, kept when IN the
-- same subquery for B.  The service runs ref_mutual_count.sql beside it for the total.
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
SELECT f_b.address
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
											ELSE f_b.address_requester END)))
ORDER BY f_b.address
LIMIT :limit OFFSET 0;
