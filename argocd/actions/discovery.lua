-- Argo CD resource actions for canary.atze.io/v1 CanaryApp (canaryop):
-- which actions the UI and `argocd app actions list` offer, and which of
-- them apply to the object as it is. Installed in argocd-cm under
-- resource.customizations.actions.canary.atze.io_CanaryApp, next to the
-- action scripts (argocd-cm-patch.yaml holds them all).
--
--   approve  a canary waits at the approval gate: set spec.approvedImage
--   abort    a canary runs: roll it back now, its image recorded as failed
--   retry    an image is recorded as failed: allow it again
--   suspend  freeze the running canary's weight (spec.suspend)
--   resume   let a suspended canary go on
local actions = {}
local spec = obj.spec or {}
local status = obj.status or {}

local function recorded(list, image)
  if list == nil then
    return false
  end
  for _, f in ipairs(list) do
    if f.image == image then
      return true
    end
  end
  return false
end

local running = status.canaryImage ~= nil and status.canaryImage ~= ""
local failed = spec.image ~= nil and (recorded(spec.failedImages, spec.image) or recorded(status.failedImages, spec.image))
local anyFailed = (spec.failedImages ~= nil and #spec.failedImages > 0) or (status.failedImages ~= nil and #status.failedImages > 0)

actions["approve"] = {["disabled"] = status.approval == nil, ["iconClass"] = "fa fa-fw fa-check", ["displayName"] = "Approve the canary"}
actions["abort"] = {["disabled"] = not running, ["iconClass"] = "fa fa-fw fa-stop", ["displayName"] = "Abort the canary"}
actions["retry"] = {["disabled"] = not (failed or anyFailed), ["iconClass"] = "fa fa-fw fa-redo", ["displayName"] = "Retry the failed image"}
actions["suspend"] = {["disabled"] = spec.suspend == true, ["iconClass"] = "fa fa-fw fa-pause", ["displayName"] = "Suspend"}
actions["resume"] = {["disabled"] = spec.suspend ~= true, ["iconClass"] = "fa fa-fw fa-play", ["displayName"] = "Resume"}
return actions
