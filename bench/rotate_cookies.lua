-- wrk: each request carries the next Cookie header of COOKIES_FILE (one header value a line),
-- in turn, starting over after the last. bench/get_session.py sets COOKIES_FILE above this
-- text. Taken in turn rather than at random, every session comes back only after all the
-- others: the worst case for a memo that drops its oldest entries first, as Bastion's do.
-- The requests are written once, here: formatting one per request cost wrk a fifth more CPU,
-- taken from the server's on a machine of two CPUs.

local requests = {}
for line in io.lines(COOKIES_FILE) do
  if #line > 0 then
    requests[#requests + 1] = wrk.format(nil, nil, { Cookie = line })
  end
end
if #requests == 0 then
  error("no cookie in " .. COOKIES_FILE)
end

local turn = 0

request = function()
  turn = turn % #requests + 1
  return requests[turn]
end
