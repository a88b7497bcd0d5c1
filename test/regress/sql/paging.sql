-- paging: social.page_limit, social.clamp_offset and social.page_number (0.3.0), the one table of
-- page sizes (extension/paging.c) that every paged read and sociald's page numbers use.
--
-- The lists' reads are checked against these clamps in pagination.sql; here the functions
-- themselves, for every list, at every edge: NULL, 0, negative, the default, the maximum and
-- beyond it, the offset cap and beyond it, and names that are no list.
DROP EXTENSION social;
CREATE EXTENSION social;
\set SHOW_CONTEXT never

CREATE TEMP TABLE lists (n int, list text);
INSERT INTO lists VALUES (1, 'friends'), (2, 'mutual_friends'), (3, 'pending_requests'),
	(4, 'sent_requests'), (5, 'blocked_users');
CREATE TEMP TABLE requests (n int, requested int);
INSERT INTO requests VALUES (1, NULL), (2, -2147483648), (3, -1), (4, 0), (5, 1), (6, 99),
	(7, 100), (8, 101), (9, 199), (10, 200), (11, 201), (12, 999), (13, 1000), (14, 1001),
	(15, 2147483647);

-- =============================================================================================
-- page_limit: the default for NULL, zero and negative; the request up to the list's maximum.
-- =============================================================================================
SELECT l.list, r.requested, social.page_limit(l.list, r.requested) AS page_limit
FROM lists l, requests r
ORDER BY l.n, r.n;

-- Each list's default and maximum, in one row.
SELECT l.list, social.page_limit(l.list, NULL) AS "default",
	   social.page_limit(l.list, 2147483647) AS maximum
FROM lists l ORDER BY l.n;

-- =============================================================================================
-- clamp_offset: 0 for NULL and negative, at most 100000.
-- =============================================================================================
SELECT requested, social.clamp_offset(requested) AS "offset"
FROM (VALUES (1, NULL), (2, -2147483648), (3, -1), (4, 0), (5, 1), (6, 99999), (7, 100000),
			 (8, 100001), (9, 2147483647)) AS t(n, requested)
ORDER BY n;

-- =============================================================================================
-- page_number: ceil(offset / limit) + 1 of the clamped limit and offset.
-- =============================================================================================
CREATE TEMP TABLE pages (n int, "limit" int, "offset" int);
INSERT INTO pages VALUES
	(1, NULL, NULL),			-- the first page at the default
	(2, 0, 0),
	(3, -5, -5),				-- both clamped: default limit, offset 0
	(4, 10, 0),
	(5, 10, 1),					-- a page that starts inside page 2 is page 2
	(6, 10, 9),
	(7, 10, 10),
	(8, 10, 11),
	(9, 1, 99999),
	(10, 1, 100000),			-- the offset cap ...
	(11, 1, 100001),			-- ... beyond it, the cap
	(12, 1, 2147483647),
	(13, 7, 100000),
	(14, NULL, 150),			-- the default limit decides
	(15, 0, 150),
	(16, 250, 250),				-- over the requests' maximum (200): offset 250 is page 3 there
	(17, 2000, 2500),			-- over every maximum
	(18, 2147483647, 2147483647),
	(19, NULL, -1);
SELECT l.list, p."limit", p."offset", social.page_number(l.list, p."limit", p."offset") AS page
FROM lists l, pages p
ORDER BY l.n, p.n;

-- page_number is the page of page_limit and clamp_offset, for every list and every edge.
SELECT count(*) AS disagreements
FROM lists l, requests r, requests o
WHERE social.page_number(l.list, r.requested, o.requested)
	  IS DISTINCT FROM
	  (ceil(social.clamp_offset(o.requested)::numeric / social.page_limit(l.list, r.requested))
	   + 1)::integer;

-- =============================================================================================
-- A name that is no paged list: SC014, from both functions.
-- =============================================================================================
SELECT social.page_limit('friend', 10);
SELECT :'SQLSTATE' AS sqlstate;
SELECT social.page_limit('Friends', 10);
SELECT :'SQLSTATE' AS sqlstate;
SELECT social.page_limit('', NULL);
SELECT :'SQLSTATE' AS sqlstate;
SELECT social.page_limit(NULL, 10);
SELECT :'SQLSTATE' AS sqlstate;
SELECT social.page_number('friend_suggestions', 10, 0);
SELECT :'SQLSTATE' AS sqlstate;
SELECT social.page_number(NULL, NULL, NULL);
SELECT :'SQLSTATE' AS sqlstate;

-- =============================================================================================
-- What they are: immutable, parallel safe, not strict (NULL is a request for the default),
-- executable by social_service and social_analyst only.
-- =============================================================================================
SELECT p.oid::regprocedure AS function, p.provolatile, p.proparallel, p.proisstrict,
	   l.lanname, has_function_privilege('social_service', p.oid, 'EXECUTE') AS service,
	   has_function_privilege('social_analyst', p.oid, 'EXECUTE') AS analyst,
	   has_function_privilege('public', p.oid, 'EXECUTE') AS public
FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
WHERE p.oid IN ('social.page_limit(text, integer)'::regprocedure,
				'social.page_number(text, integer, integer)'::regprocedure,
				'social.clamp_offset(integer)'::regprocedure)
ORDER BY p.oid::regprocedure::text;

-- The SQL reads take their clamps from page_limit, with their own list's name, and clamp_offset.
SELECT p.proname,
	   strpos(pg_get_functiondef(p.oid),
			  format('social.page_limit(%L::text, %s."limit")', p.proname, p.proname)) > 0
		   AS limit_from_page_limit,
	   strpos(pg_get_functiondef(p.oid), format('social.clamp_offset(%s."offset")', p.proname)) > 0
		   AS offset_from_clamp_offset,
	   strpos(pg_get_functiondef(p.oid), 'clamp_limit') = 0 AS no_clamp_limit
FROM pg_proc p
WHERE p.pronamespace = 'social'::regnamespace
  AND p.proname IN ('pending_requests', 'sent_requests', 'blocked_users')
ORDER BY p.proname;
