-- Approve the canary waiting at the approval gate: spec.approvedImage names
-- it. For an app whose spec lives in Git, merging the approval pull request
-- is the recorded way; this action is for apps changed with kubectl.
local status = obj.status or {}
if status.approval == nil or status.approval.image == nil or status.approval.image == "" then
  error("no canary waits for approval", 0)
end
obj.spec.approvedImage = status.approval.image
return obj
