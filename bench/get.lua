-- wrk script: GET a static file from the same Apache (bench/bench.pl): the
-- floor of what httpd, the kernel and wrk cost per request on this machine,
-- with no module and no database. done() prints the "BENCH ..." line.

-- setup(), response(), done() and the counters: bench/count.lua, beside this file.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "count.lua")

function init(args)
   count_reset()
end
