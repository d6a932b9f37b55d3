-- Argo CD health check for canary.atze.io/v1 CanaryApp (canaryop).
--
-- Install it in argocd-cm under the key
-- resource.customizations.health.canary.atze.io_CanaryApp (argocd-cm-patch.yaml
-- holds this script under that key). It uses only Lua's base and table
-- libraries: Argo CD opens no others for a health check from argocd-cm.
--
-- In order, the first that applies:
--   Degraded     spec.image is recorded as failed (spec.failedImages, or
--                status.failedImages: the operator rolled it back), so Git
--                still names an image that must not run
--   Progressing  no status yet, or status.observedGeneration is older than
--                metadata.generation: the operator has not seen this spec
--   Degraded     condition Stalled is True: a person must change something
--   Suspended    a canary waits for a person: at the approval gate
--                (status.approval) or frozen by spec.suspend
--   Progressing  condition Progressing is True: a canary or promotion runs
--   Healthy      condition Ready is True: the stable image takes all traffic
--   Progressing  otherwise: waiting for the primary Deployment

local hs = {}

local function findByField(list, field, value)
  if list == nil then
    return nil
  end
  for _, item in ipairs(list) do
    if item[field] == value then
      return item
    end
  end
  return nil
end

-- text returns a condition's reason and message as one line.
local function text(condition)
  local reason = condition.reason or ""
  local message = condition.message or ""
  if message == "" then
    return reason
  end
  if reason == "" then
    return message
  end
  return reason .. ": " .. message
end

local spec = obj.spec or {}
local status = obj.status
local image = spec.image

if image ~= nil then
  local failed = findByField(spec.failedImages, "image", image)
  if failed == nil and status ~= nil then
    failed = findByField(status.failedImages, "image", image)
  end
  if failed ~= nil then
    hs.status = "Degraded"
    hs.message = "spec.image " .. image .. " failed its canary"
    if failed.reason ~= nil and failed.reason ~= "" then
      hs.message = hs.message .. " (" .. failed.reason .. ")"
    end
    hs.message = hs.message .. "; the stable image keeps running until Git names another image"
    return hs
  end
end

if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

local generation = obj.metadata.generation or 0
local observed = status.observedGeneration or 0
if observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local stalled = findByField(status.conditions, "type", "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = "Stalled: " .. text(stalled)
  return hs
end

if status.approval ~= nil and status.canaryImage ~= nil and status.canaryImage ~= "" then
  hs.status = "Suspended"
  hs.message = "Canary " .. status.canaryImage .. " passed analysis at weight " .. tostring(status.canaryWeight or 0) ..
    "% and waits for approval: set spec.approvedImage to it (merge the approval pull request, or run the approve action)"
  local wb = status.writeBack
  if wb ~= nil and wb.outcome == "ApprovalRequested" and wb.image == status.canaryImage and wb.pullRequestURL ~= nil then
    hs.message = hs.message .. ": " .. wb.pullRequestURL
  end
  return hs
end
if status.suspendedAt ~= nil and status.canaryImage ~= nil and status.canaryImage ~= "" then
  hs.status = "Suspended"
  hs.message = "Canary " .. status.canaryImage .. " is suspended at weight " .. tostring(status.canaryWeight or 0) ..
    "% (spec.suspend); checks keep running"
  return hs
end

local progressing = findByField(status.conditions, "type", "Progressing")
if progressing ~= nil and progressing.status == "True" then
  hs.status = "Progressing"
  hs.message = text(progressing)
  if status.canaryImage ~= nil and status.canaryImage ~= "" then
    hs.message = "Canary " .. status.canaryImage .. " at weight " .. tostring(status.canaryWeight or 0) .. "%: " .. hs.message
  end
  return hs
end

local ready = findByField(status.conditions, "type", "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = text(ready)
  return hs
end

hs.status = "Progressing"
if ready ~= nil then
  hs.message = "Not ready: " .. text(ready)
else
  hs.message = "Waiting for the operator to report readiness"
end
return hs
