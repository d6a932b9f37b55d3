package v1

import (
	"time"
)

// Defaults of spec.analysis. They reproduce the original operator.
const (
	DefaultInterval           = 30 * time.Second
	DefaultCheckInterval      = 2 * time.Second
	DefaultStepWeight         = int32(10)
	DefaultPromotionWeight    = int32(50)
	DefaultFailureThreshold   = int32(1)
	DefaultCanaryReadyTimeout = 5 * time.Minute
)

// Analysis is spec.analysis with every default filled in.
type Analysis struct {
	Interval           time.Duration
	CheckInterval      time.Duration
	Weights            []int32 // strictly increasing, ending at the promotion weight
	FailureThreshold   int32
	CanaryReadyTimeout time.Duration
	OnQueryError       QueryErrorPolicy
	Approval           ApprovalPolicy
}

// PromotionWeight is the last weight of the canary before promotion.
func (a Analysis) PromotionWeight() int32 { return a.Weights[len(a.Weights)-1] }

// EffectiveAnalysis returns the analysis settings of a spec with every
// default applied. The API server's schema rejects the values this function
// cannot honour; it still clamps them, so it never panics on any input.
func (s *CanaryAppSpec) EffectiveAnalysis() Analysis {
	a := Analysis{
		Interval:           DefaultInterval,
		CheckInterval:      DefaultCheckInterval,
		FailureThreshold:   DefaultFailureThreshold,
		CanaryReadyTimeout: DefaultCanaryReadyTimeout,
		OnQueryError:       QueryErrorHold,
		Approval:           ApprovalAutomatic,
	}
	step, promote := DefaultStepWeight, DefaultPromotionWeight
	var explicit []int32
	if in := s.Analysis; in != nil {
		if in.Interval != nil && in.Interval.Duration > 0 {
			a.Interval = in.Interval.Duration
		}
		if in.CheckInterval != nil && in.CheckInterval.Duration > 0 {
			a.CheckInterval = in.CheckInterval.Duration
		}
		if in.FailureThreshold != nil && *in.FailureThreshold > 0 {
			a.FailureThreshold = *in.FailureThreshold
		}
		if in.CanaryReadyTimeout != nil && in.CanaryReadyTimeout.Duration > 0 {
			a.CanaryReadyTimeout = in.CanaryReadyTimeout.Duration
		}
		if in.OnQueryError == QueryErrorFail {
			a.OnQueryError = QueryErrorFail
		}
		if in.Approval == ApprovalManual {
			a.Approval = ApprovalManual
		}
		if in.StepWeight != nil {
			step = clampWeight(*in.StepWeight)
		}
		if in.PromotionWeight != nil {
			promote = clampWeight(*in.PromotionWeight)
		}
		explicit = in.StepWeights
	}
	if a.CheckInterval > a.Interval {
		a.CheckInterval = a.Interval
	}
	a.Weights = weights(explicit, step, promote)
	return a
}

// weights returns the canary weights: the explicit list (kept strictly
// increasing and cut at the promotion weight) or steps of `step` up to
// `promote`, always ending exactly at the promotion weight.
func weights(explicit []int32, step, promote int32) []int32 {
	var out []int32
	if len(explicit) > 0 {
		for _, w := range explicit {
			w = clampWeight(w)
			if len(out) > 0 && w <= out[len(out)-1] {
				continue
			}
			if w >= promote {
				break
			}
			out = append(out, w)
		}
		return append(out, promote)
	}
	for w := step; w < promote; w += step {
		out = append(out, w)
	}
	return append(out, promote)
}

func clampWeight(w int32) int32 {
	return min(max(w, 1), 100)
}

// IsFailedImage reports whether image is recorded as failed, in the spec
// (the record kept in Git) or in the status (the record kept in-cluster).
func (c *CanaryApp) IsFailedImage(image string) bool {
	for _, f := range c.Spec.FailedImages {
		if f.Image == image {
			return true
		}
	}
	for _, f := range c.Status.FailedImages {
		if f.Image == image {
			return true
		}
	}
	return false
}
