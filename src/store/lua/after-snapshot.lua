-- Shared by load.lua and poll.lua (prepended): what a reader folds on top of the stored snapshot.
-- KEYS[2] is the stream's events, KEYS[4] its answer's text.

-- The entries after the snapshot's entry `sid` (an exclusive range), never the whole history; none
-- when the snapshot is of the latest version. `sv` and `sid` are false when there is no snapshot.
local function entries_after(version, snapshot_version, snapshot_entry)
  if version == snapshot_version then return {} end
  local from = '-'
  if snapshot_entry then from = '(' .. snapshot_entry end
  return redis.call('XRANGE', KEYS[2], from, '+')
end

-- The snapshot's answer: the first `answer_length` bytes of the text; false for a snapshot that
-- holds its answer itself (or for no snapshot).
local function answer_at(snapshot, answer_length)
  if not snapshot or not answer_length then return false end
  local length = tonumber(answer_length)
  if length == 0 then return '' end
  return redis.call('GETRANGE', KEYS[4], 0, length - 1)
end
