-- wrk script: POST token (or introspection) requests and check every answer.
--
--   wrk ... -s bench/token_request.lua URL -- REQUESTS.lua [LIMIT]
--
-- REQUESTS.lua (written by bench/load.py) returns
-- {path = ..., expect = ..., requests = {{headers = {...}, body = ...}, ...}}.
-- Each thread cycles through the requests from its own starting point, so many clients are
-- spread over the run.
--
-- Or, for requests that may be sent only once (private_key_jwt: each assertion is accepted
-- once), {path = ..., headers = {...}, exhausted = BODY, slices = {FILE1, FILE2, ...}}: thread i
-- reads its own FILEi (one body per line) and sends each line once, in order, never wrapping;
-- a thread that runs out counts an error, stops, and answers wrk's further calls with the
-- credential-less "exhausted" body (refused, and counted as errors too).
-- With line_header = NAME and body = BODY (DPoP: each proof is accepted once), each line is
-- instead the value of header NAME of one request with the fixed BODY, and "exhausted" the
-- value sent after running out (an invalid proof, refused).
--
-- A response is an error unless its status is 2xx and its body holds
-- `expect`, a string or each string of a list ("access_token" for the token endpoint,
-- "active":true for introspection; DPoP also "token_type":"DPoP"), and, when `expect_any` is a
-- non-empty list, at least one of its strings (mTLS: the token's cnf claim as base64url at each
-- of its three alignments in the JWT payload). With LIMIT,
-- each thread stops after LIMIT responses and prints BENCH_LIMIT.
-- done() prints one line: BENCH_RESULT {json}; latencies in microseconds.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_index", #threads)
end

function init(args)
  local spec = dofile(args[1])
  limit = tonumber(args[2] or "0") or 0
  prepared = {}
  if spec.slices then
    local file = spec.slices[thread_index]
    if file == nil then
      error("no slice of single-use requests for thread " .. thread_index)
    end
    local function format(line)
      if spec.line_header then
        spec.headers[spec.line_header] = line
        return wrk.format("POST", spec.path, spec.headers, spec.body)
      end
      return wrk.format("POST", spec.path, spec.headers, line)
    end
    for line in io.lines(file) do
      prepared[#prepared + 1] = format(line)
    end
    single_use = true
    exhausted = format(spec.exhausted)
    position = 0
  else
    for i, r in ipairs(spec.requests) do
      prepared[i] = wrk.format("POST", spec.path, r.headers, r.body)
    end
    single_use = false
    position = ((thread_index - 1) * 7919) % #prepared
  end
  count = #prepared
  ran_out = false
  expect = spec.expect or '"access_token"'
  if type(expect) == "string" then expect = {expect} end
  expect_any = spec.expect_any or {}
  responses = 0
  errors = 0
  first_error = ""
end

function request()
  if single_use then
    if position >= count then
      if not ran_out then
        ran_out = true
        errors = errors + 1
        local earlier = first_error ~= "" and ("; earlier: " .. first_error) or ""
        first_error = "thread " .. thread_index .. " ran out of its " .. count .. " single-use requests" .. earlier
        wrk.thread:stop()
      end
      return exhausted
    end
    position = position + 1
    return prepared[position]
  end
  position = position % count + 1
  return prepared[position]
end

local function expected(body)
  for _, wanted in ipairs(expect) do
    if not string.find(body, wanted, 1, true) then return false end
  end
  if #expect_any == 0 then return true end
  for _, wanted in ipairs(expect_any) do
    if string.find(body, wanted, 1, true) then return true end
  end
  return false
end

function response(status, headers, body)
  responses = responses + 1
  if status < 200 or status > 299 or not expected(body or "") then
    errors = errors + 1
    if first_error == "" then
      first_error = tostring(status) .. " " .. string.sub(body or "", 1, 300)
    end
  end
  if limit > 0 and responses == limit then
    -- wrk's main thread sleeps for the whole duration: tell bench/load.py, which interrupts it.
    io.write("BENCH_LIMIT\n")
    io.flush()
    wrk.thread:stop()
  end
end

local function json_string(value)
  local escaped = string.gsub(value, '[%c"\\\128-\255]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. escaped .. '"'
end

function done(summary, latency, requests)
  local checked, failed, first = 0, 0, ""
  for _, thread in ipairs(threads) do
    checked = checked + thread:get("responses")
    failed = failed + thread:get("errors")
    if first == "" then first = thread:get("first_error") end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"duration_us": %d, "requests": %d, "bytes": %d, "checked": %d, "failed": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, "non_2xx": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "p999_us": %d, "mean_us": %.1f, "max_us": %d, ' ..
    '"first_error": %s}\n',
    summary.duration, summary.requests, summary.bytes, checked, failed,
    e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.mean, latency.max, json_string(first)))
end
