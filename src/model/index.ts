// The service spec model: what the CLI, the API and the replication layer import.
//
//   parseStackText(text, opts) / loadSpecFile(path, opts) → StackResult (whole stack, or every error)
//   canonicalService / encodeService / decodeService      → canonical form and its bytes
//   planStack(current, stack, { prune }) → Plan;  renderPlan(plan) → terminal text
export { parseStackText, parseStackDoc, detectFormat } from './stack.ts'
export type { ParseOptions, SpecFormat, StackResult } from './result.ts'
export type { Diagnostic, Loc, Path } from './errors.ts'
export { formatPath } from './errors.ts'
export { canonicalService, encodeService, decodeService, sameService, MAX_SPEC_BYTES } from './canonical.ts'
export { planStack, planIsEmpty, diffServices } from './plan.ts'
export type { Plan, PlanOptions, FieldChange, ServiceChange } from './plan.ts'
export { renderPlan, formatChange, formatValue, displayPath, summarizeService } from './plan-render.ts'
export type { RenderOptions } from './plan-render.ts'
export { serviceSpecSchema, DNS_LABEL } from './spec.ts'
export type {
  ServiceSpec, ServiceSpecInput, Stack, Port, Constraint, Mount, VolumeDecl, FileDecl, FileRef, FileOrigin, Healthcheck,
  RestartPolicy, UpdatePolicy, Resources, Placement, OnHostLoss,
} from './spec.ts'
export { formatConstraint, parseConstraint } from './syntax.ts'
export { formatDuration, formatMemory, formatCpu, parseDuration, parseMemory, parseCpu } from './units.ts'
