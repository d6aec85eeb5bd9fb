-- Argo CD health check for gitstage.dev/ModelRegistry. Install it in argocd-cm as
--   resource.customizations.health.gitstage.dev_ModelRegistry: |
--     <this file>
-- It reads the conditions gitstage writes with kstatus semantics: Stalled=True is a failure a
-- human must fix, Reconciling=True is work in progress, Ready=True is every Deployment serving
-- the version its stage asks for.
local health = {}
if obj.status == nil or obj.status.conditions == nil then
  health.status = "Progressing"
  health.message = "Waiting for gitstage to reconcile"
  return health
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  health.status = "Progressing"
  health.message = "Waiting for gitstage to observe the latest spec"
  return health
end
local conditions = {}
for _, condition in ipairs(obj.status.conditions) do
  conditions[condition.type] = condition
end
local ready, stalled, reconciling = conditions["Ready"], conditions["Stalled"], conditions["Reconciling"]
if ready ~= nil and ready.reason == "Suspended" then
  health.status = "Suspended"
  health.message = ready.message
elseif stalled ~= nil and stalled.status == "True" then
  health.status = "Degraded"
  health.message = stalled.reason .. ": " .. (stalled.message or "")
elseif reconciling ~= nil and reconciling.status == "True" then
  health.status = "Progressing"
  health.message = reconciling.message or ""
elseif ready ~= nil and ready.status == "True" then
  health.status = "Healthy"
  health.message = ready.message or ""
elseif ready ~= nil and ready.status == "False" then
  -- Held: a deprecated artifact or an empty stage keeps the last version serving.
  health.status = "Degraded"
  health.message = ready.reason .. ": " .. (ready.message or "")
else
  health.status = "Progressing"
  health.message = "Waiting for gitstage to reconcile"
end
return health
