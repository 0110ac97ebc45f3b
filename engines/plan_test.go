package engines

import "testing"

func TestSameTensorRTReleaseIgnoresBuildNumbers(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"10.3.0", "10.3.0", true},
		{"10.3.0.26", "10.3.0", true},
		{" 10.3.0", "10.3.0.1", true},
		{"10.3.0", "10.3.1", false},
		{"10.3.0", "10.4.0", false},
		{"10.3", "10.3", false}, // not a release: refuse rather than guess
		{"", "10.3.0", false},
		{"10.x.0", "10.x.0", false},
		{"10.13.0", "10.1.30", false},
	}
	for _, tc := range tests {
		if got := SameTensorRTRelease(tc.a, tc.b); got != tc.want {
			t.Errorf("SameTensorRTRelease(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestSameComputeCapability(t *testing.T) {
	if !SameComputeCapability(" 8.6", "8.6") || SameComputeCapability("8.6", "8.9") || SameComputeCapability("", "8.6") {
		t.Fatal("SameComputeCapability compares the trimmed strings")
	}
}
