-- wrk script for POST /patients/add_and_link?uid=... (scripts/bench.sh).
--   wrk -t2 -c16 -d10s -s bench/link.lua 'http://127.0.0.1:PORT/patients/add_and_link?uid=doc-bench' \
--       -- TOKEN RUN CAP
-- Every request links a new patient to a distinct free appointment. Thread t
-- of run RUN counts n = 1, 2, ... and uses appointment
--   printf("%012x%012x", 16 + 16*RUN + t, n)
-- which bench/fixtures.sql created (n up to CAP) for doctor doc-bench. Runs
-- and threads never share an id. done() prints the "BENCH ..." line, with the
-- highest n used (it must stay <= CAP, else requests answer 404).

local threads = {}

function setup(thread)
   thread:set("tindex", #threads)
   table.insert(threads, thread)
end

function init(args)
   slot = 16 + 16 * tonumber(args[2]) + tindex
   cap = tonumber(args[3])
   hdrs = {
      ["Authorization"] = "Bearer " .. args[1],
      ["Content-Type"] = "application/json",
   }
   n, ok, other, codes = 0, 0, 0, {}
end

function request()
   n = n + 1
   local body = string.format('{"appointment_id": "%012x%012x", "firstName": "Jane", ' ..
      '"lastName": "Smith", "dateOfBirth": "1990-03-20"}', slot, n)
   return wrk.format("POST", nil, hdrs, body)
end

function response(status)
   if status >= 200 and status < 300 then
      ok = ok + 1
   else
      other = other + 1
      codes[status] = (codes[status] or 0) + 1
   end
end

function done(summary, latency, requests)
   local ok_sum, other_sum, maxn, cap, all = 0, 0, 0, 0, {}
   for _, t in ipairs(threads) do
      ok_sum = ok_sum + t:get("ok")
      other_sum = other_sum + t:get("other")
      maxn = math.max(maxn, t:get("n"))
      cap = t:get("cap")
      for k, v in pairs(t:get("codes")) do all[k] = (all[k] or 0) + v end
   end
   local list = {}
   for k, v in pairs(all) do table.insert(list, k .. ":" .. v) end
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f ok=%d non2xx=%d codes=%s sockerr=%d/%d/%d/%d maxn=%d\n",
      summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
      latency:percentile(50) / 1000, latency:percentile(99) / 1000, ok_sum, other_sum,
      #list > 0 and table.concat(list, ",") or "-",
      e.connect, e.read, e.write, e.timeout, maxn))
   if maxn > cap then
      io.write("BENCH-WARNING appointment ids ran past CAP: raise the fixtures\n")
   end
end
