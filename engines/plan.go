package engines

import (
	"strconv"
	"strings"
)

// SameTensorRTRelease reports whether two TensorRT versions are the same
// release (major.minor.patch): a plan loads only on the release it was built
// with, and a build number ("10.3.0.26") does not change that.
func SameTensorRTRelease(a, b string) bool {
	ra, okA := tensorRTRelease(a)
	rb, okB := tensorRTRelease(b)
	return okA && okB && ra == rb
}

func tensorRTRelease(v string) ([3]int, bool) {
	var r [3]int
	parts := strings.Split(strings.TrimSpace(v), ".")
	if len(parts) < 3 {
		return r, false
	}
	for i := range r {
		n, err := strconv.Atoi(parts[i])
		if err != nil || n < 0 {
			return r, false
		}
		r[i] = n
	}
	return r, true
}

// SameComputeCapability reports whether a plan built for compute capability
// built runs on a device of compute capability device.
func SameComputeCapability(built, device string) bool {
	return strings.TrimSpace(built) == strings.TrimSpace(device)
}
