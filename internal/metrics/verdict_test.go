package metrics

import (
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/common/model"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

func sample(v float64, labels ...string) *model.Sample {
	m := model.Metric{}
	for i := 0; i+1 < len(labels); i += 2 {
		m[model.LabelName(labels[i])] = model.LabelValue(labels[i+1])
	}
	return &model.Sample{Metric: m, Value: model.SampleValue(v)}
}

func TestEvaluate(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name    string
		in      model.Value
		verdict v1.CheckVerdict
		value   string
		message string // substring; "" means the message must be empty
	}{
		{"empty vector passes", model.Vector{}, v1.CheckPass, "empty", ""},
		{"one sample fails", model.Vector{sample(3, "response_code", "503")}, v1.CheckFail, "3", "query returned 1 series; highest value 3"},
		{"highest of several series", model.Vector{sample(1, "pod", "a"), sample(3.5, "pod", "b")}, v1.CheckFail, "3.5 (2 series, max)", "2 series; highest value 3.5"},
		{"zero-valued sample still fails", model.Vector{sample(0)}, v1.CheckFail, "0", "1 series; highest value 0"},
		{"negative samples fail", model.Vector{sample(-2), sample(-7)}, v1.CheckFail, "-2 (2 series, max)", "highest value -2"},
		{"only NaN is inconclusive", model.Vector{sample(nan), sample(nan)}, v1.CheckInconclusive, "NaN", "only NaN (2 series)"},
		{"NaN beside a sample is ignored", model.Vector{sample(nan, "pod", "a"), sample(4, "pod", "b")}, v1.CheckFail, "4", "1 series; highest value 4"},
		{"+Inf is a sample", model.Vector{sample(math.Inf(1))}, v1.CheckFail, "+Inf", ""},
		{"-Inf is a sample", model.Vector{sample(math.Inf(-1))}, v1.CheckFail, "-Inf", ""},
		{"native histogram counts its observations", model.Vector{{Metric: model.Metric{}, Histogram: &model.SampleHistogram{Count: 12}}}, v1.CheckFail, "12", ""},
		{"scalar zero passes", &model.Scalar{Value: 0}, v1.CheckPass, "0", ""},
		{"scalar negative zero passes", &model.Scalar{Value: model.SampleValue(math.Copysign(0, -1))}, v1.CheckPass, "0", ""},
		{"scalar non-zero fails", &model.Scalar{Value: 2}, v1.CheckFail, "2", ""},
		{"scalar +Inf fails", &model.Scalar{Value: model.SampleValue(math.Inf(1))}, v1.CheckFail, "+Inf", ""},
		{"scalar NaN is inconclusive", &model.Scalar{Value: model.SampleValue(nan)}, v1.CheckInconclusive, "NaN", "scalar NaN"},
		{"matrix is inconclusive", model.Matrix{{Metric: model.Metric{}, Values: []model.SamplePair{{Value: 1}}}}, v1.CheckInconclusive, "", "must return an instant vector or a scalar"},
		{"string is inconclusive", &model.String{Value: "x"}, v1.CheckInconclusive, "", "must return an instant vector or a scalar"},
		{"no value is inconclusive", nil, v1.CheckInconclusive, "", "no result"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := evaluate(tt.in)
			if got.Verdict != tt.verdict || got.Value != tt.value {
				t.Fatalf("evaluate() = %+v, want verdict %s value %q", got, tt.verdict, tt.value)
			}
			if tt.message == "" && got.Verdict != v1.CheckFail && got.Message != "" {
				t.Errorf("message = %q, want none", got.Message)
			}
			if !strings.Contains(got.Message, tt.message) {
				t.Errorf("message = %q, want it to contain %q", got.Message, tt.message)
			}
			if strings.Contains(got.Message, "pod") || strings.Contains(got.Message, "response_code") {
				t.Errorf("message = %q shows a series label", got.Message)
			}
		})
	}
}

func TestFormatFloat(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"},
		{3, "3"},
		{-3, "-3"},
		{3.5, "3.5"},
		{0.1 + 0.2, "0.3"},
		{2.0 / 3, "0.666667"},
		{123456789, "123456789"},
		{1234567.25, "1.23457e+06"},
		{1e20, "1e+20"},
		{math.Inf(1), "+Inf"},
		{math.Inf(-1), "-Inf"},
		{math.NaN(), "NaN"},
	}
	for _, tt := range tests {
		if got := formatFloat(tt.in); got != tt.want {
			t.Errorf("formatFloat(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTruncateKeepsMessagesShortAndValidUTF8(t *testing.T) {
	long := strings.Repeat("é", 2*maxMessage) // 2 bytes each
	got := truncate(long)
	if n := utf8.RuneCountInString(got); n > maxMessage {
		t.Errorf("%d characters, want <= %d", n, maxMessage)
	}
	if !strings.HasSuffix(got, "…") || !strings.HasPrefix(got, "éé") {
		t.Errorf("truncate() = %q, want a prefix of é followed by …", got)
	}
	if strings.ContainsRune(got, '\uFFFD') || !isValidUTF8(got) {
		t.Errorf("truncate() split a character: %q", got)
	}
	if short := "short"; truncate(short) != short {
		t.Errorf("truncate(%q) changed it", short)
	}

	labels := model.Vector{sample(5, "label", strings.Repeat("x", 1000))}
	if msg := evaluate(labels).Message; len(msg) > maxMessage || strings.Contains(msg, "xxx") {
		t.Errorf("failed-check message %q is %d bytes or shows the label, want <= %d and no label", msg, len(msg), maxMessage)
	}
}

func isValidUTF8(s string) bool { return strings.ToValidUTF8(s, "?") == s }
