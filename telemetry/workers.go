package telemetry

import "time"

// WorkerView is one worker's figures as it shares them with every gateway
// (a process of role worker or all behind a shared queue): what it runs
// and how it did.
type WorkerView struct {
	Name          string    `json:"name"`
	Role          string    `json:"role"`
	Models        []string  `json:"models"`
	Running       int       `json:"running"`
	MaxBatch      int       `json:"max_batch"`
	Succeeded     uint64    `json:"succeeded"`
	Failed        uint64    `json:"failed"`
	Cancelled     uint64    `json:"cancelled"`
	SecondsPerJob float64   `json:"seconds_per_job"`
	MeanBatchSize float64   `json:"mean_batch_size"`
	GPU           GPUStats  `json:"gpu"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	Updated       time.Time `json:"updated"`
}

// WorkerOf is the view a worker shares, from its own /v1/stats.
func WorkerOf(name, role string, models []string, v StatsView, now time.Time) WorkerView {
	return WorkerView{
		Name: name, Role: role, Models: models, Running: v.Queue.Running, MaxBatch: v.Queue.MaxBatch,
		Succeeded: v.Jobs.Succeeded, Failed: v.Jobs.Failed, Cancelled: v.Jobs.Cancelled,
		SecondsPerJob: v.Jobs.SecondsPerJob, MeanBatchSize: v.Jobs.MeanBatchSize, GPU: v.GPU,
		UptimeSeconds: v.UptimeSeconds, Updated: now,
	}
}

// WorkerGauges are the Prometheus series of every worker, labelled by
// name; each metric's samples come together, as the exposition format
// wants.
func WorkerGauges(workers []WorkerView, now time.Time) []Gauge {
	series := []struct {
		name, help string
		value      func(WorkerView) float64
	}{
		{"hy3d_worker_jobs_running", "Jobs a worker runs now.", func(w WorkerView) float64 { return float64(w.Running) }},
		{"hy3d_worker_max_batch", "Jobs a worker samples together at most (--max-batch).", func(w WorkerView) float64 { return float64(w.MaxBatch) }},
		{"hy3d_worker_seconds_per_job", "A worker's EWMA of a job's run time divided by the jobs running beside it.", func(w WorkerView) float64 { return w.SecondsPerJob }},
		{"hy3d_worker_gpu_utilization_ratio", "A worker's GPU utilization (0..1; 0 without telemetry).", func(w WorkerView) float64 { return w.GPU.Utilization }},
		{"hy3d_worker_report_age_seconds", "Seconds since a worker last reported.", func(w WorkerView) float64 { return now.Sub(w.Updated).Seconds() }},
	}
	var out []Gauge
	for _, s := range series {
		for _, w := range workers {
			out = append(out, Gauge{Name: s.name, Help: s.help, Labels: []string{"worker", w.Name}, Value: s.value(w)})
		}
	}
	for _, w := range workers {
		for _, o := range []struct {
			outcome string
			n       uint64
		}{{"succeeded", w.Succeeded}, {"failed", w.Failed}, {"cancelled", w.Cancelled}} {
			out = append(out, Gauge{Name: "hy3d_worker_jobs_total", Help: "Jobs a worker finished, by outcome.",
				Labels: []string{"worker", w.Name, "outcome", o.outcome}, Value: float64(o.n), Counter: true})
		}
	}
	return out
}
