package telemetry

import (
	"errors"
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// NVML samples GPUs through NVIDIA's management library.
type NVML struct {
	lib nvml.Interface
}

// OpenNVML initializes lib (nvml.New() when nil). On a machine without the
// NVIDIA driver it returns an error, and the server runs without GPU
// telemetry.
func OpenNVML(lib nvml.Interface) (*NVML, error) {
	if lib == nil {
		lib = nvml.New()
	}
	if ret := lib.Init(); ret != nvml.SUCCESS {
		return nil, fmt.Errorf("NVML unavailable: %s", ret.Error())
	}
	return &NVML{lib: lib}, nil
}

// Close releases the library.
func (n *NVML) Close() error {
	if ret := n.lib.Shutdown(); ret != nvml.SUCCESS {
		return fmt.Errorf("NVML shutdown: %s", ret.Error())
	}
	return nil
}

// Sample reads every device. A reading a device does not support (fans,
// power on some boards) is left at zero rather than failing the sample.
func (n *NVML) Sample() ([]GPUSample, error) {
	count, ret := n.lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("NVML device count: %s", ret.Error())
	}
	out := make([]GPUSample, 0, count)
	var errs []error
	for i := range count {
		dev, ret := n.lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			errs = append(errs, fmt.Errorf("NVML device %d: %s", i, ret.Error()))
			continue
		}
		out = append(out, sampleDevice(i, dev))
	}
	if len(out) == 0 && len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func sampleDevice(i int, dev nvml.Device) GPUSample {
	s := GPUSample{Index: i}
	if v, ret := dev.GetName(); ret == nvml.SUCCESS {
		s.Name = v
	}
	if v, ret := dev.GetUUID(); ret == nvml.SUCCESS {
		s.UUID = v
	}
	if u, ret := dev.GetUtilizationRates(); ret == nvml.SUCCESS {
		s.UtilizationGPU, s.UtilizationMemory = u.Gpu, u.Memory
	}
	if m, ret := dev.GetMemoryInfo(); ret == nvml.SUCCESS {
		s.MemoryUsedBytes, s.MemoryTotalBytes = m.Used, m.Total
	}
	if v, ret := dev.GetTemperature(nvml.TEMPERATURE_GPU); ret == nvml.SUCCESS {
		s.TemperatureC = v
	}
	if v, ret := dev.GetPowerUsage(); ret == nvml.SUCCESS {
		s.PowerWatts = float64(v) / 1000 // milliwatts
	}
	if v, ret := dev.GetEnforcedPowerLimit(); ret == nvml.SUCCESS {
		s.PowerLimitWatts = float64(v) / 1000
	}
	if v, ret := dev.GetClockInfo(nvml.CLOCK_SM); ret == nvml.SUCCESS {
		s.SMClockMHz = v
	}
	if v, ret := dev.GetClockInfo(nvml.CLOCK_MEM); ret == nvml.SUCCESS {
		s.MemoryClockMHz = v
	}
	s.ThrottleReasons = []string{}
	if v, ret := dev.GetCurrentClocksEventReasons(); ret == nvml.SUCCESS {
		s.ThrottleReasons = throttleReasons(v)
	}
	return s
}

// throttleReasonNames are the clock event reasons worth reporting; idle and
// application-clock settings are normal operation.
var throttleReasonNames = []struct {
	bit  uint64
	name string
}{
	{nvml.ClocksEventReasonSwPowerCap, "sw_power_cap"},
	{nvml.ClocksThrottleReasonHwSlowdown, "hw_slowdown"},
	{nvml.ClocksEventReasonSyncBoost, "sync_boost"},
	{nvml.ClocksEventReasonSwThermalSlowdown, "sw_thermal_slowdown"},
	{nvml.ClocksThrottleReasonHwThermalSlowdown, "hw_thermal_slowdown"},
	{nvml.ClocksThrottleReasonHwPowerBrakeSlowdown, "hw_power_brake_slowdown"},
}

func throttleReasons(mask uint64) []string {
	out := []string{}
	for _, r := range throttleReasonNames {
		if mask&r.bit != 0 {
			out = append(out, r.name)
		}
	}
	return out
}
