-- Reference strategy, GetPendingFriendshipRequests total (onlyCount).
SELECT COUNT(1) AS count
FROM ref.friendship_actions fa
JOIN ref.friendships f ON f.id = fa.friendship_id AND f.is_active IS FALSE
WHERE fa.action = 'request'
  AND fa.acting_user <> :me
  AND (f.address_requester = :me OR f.address_requested = :me)
  AND NOT EXISTS (
	SELECT 1 FROM ref.friendship_actions newer
	WHERE newer.friendship_id = fa.friendship_id AND newer.timestamp > fa.timestamp)
  AND NOT EXISTS (
	SELECT 1 FROM ref.blocks b
	WHERE (b.blocker_address = :me
		   AND b.blocked_address = CASE WHEN f.address_requester = :me THEN f.address_requested
										ELSE f.address_requester END)
	   OR (b.blocked_address = :me
		   AND b.blocker_address = CASE WHEN f.address_requester = :me THEN f.address_requested
										ELSE f.address_requester END));
