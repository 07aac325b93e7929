// Command pushclient pushes to a Pushgateway with client_golang's push package (Debian's 1.14) so that Ferry's
// client-library suite can check the result on the gateway. Every step is one scenario the driver
// (tests/clients/run_clients.py) knows the expected outcome of; any error exits non-zero.
//
// Usage: pushclient http://127.0.0.1:PORT STEP
//
//	push    PUT  job "go_job", grouping {path="a/b/c" (base64), env="" (base64 "="), lang="gö x"}: counter, gauge,
//	        histogram, summary
//	add     POST same group: one more gauge; the families pushed before stay
//	replace PUT  job "go_job", grouping {env="prod"}: a gauge, then PUT again with another value
//	delete  DELETE the "push" group
package main

import (
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
)

func mainGroup(url string) *push.Pusher {
	return push.New(url, "go_job").
		Grouping("path", "a/b/c").
		Grouping("env", "").
		Grouping("lang", "gö x")
}

func stepPush(url string) error {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gocl_requests_total", Help: "Requests seen."},
		[]string{"code"})
	c.WithLabelValues("200").Add(7)
	c.WithLabelValues("500").Add(2)
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "gocl_temperature_celsius", Help: "Temperature."})
	g.Set(-3.5)
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gocl_latency_seconds", Help: "Latency.",
		Buckets: []float64{0.1, 1, 10}})
	for _, v := range []float64{0.05, 0.5, 0.5, 5, 50} {
		h.Observe(v)
	}
	s := prometheus.NewSummary(prometheus.SummaryOpts{Name: "gocl_size_bytes", Help: "Sizes.",
		Objectives: map[float64]float64{0.5: 0.05}})
	for _, v := range []float64{1, 2, 3} {
		s.Observe(v)
	}
	return mainGroup(url).Collector(c).Collector(g).Collector(h).Collector(s).Push()
}

func stepAdd(url string) error {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "gocl_added", Help: "Added by POST."})
	g.Set(42)
	return mainGroup(url).Collector(g).Add()
}

func stepReplace(url string) error {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "gocl_replaced", Help: "Replaced by the second PUT."})
	g.Set(1)
	if err := push.New(url, "go_job").Grouping("env", "prod").Collector(g).Push(); err != nil {
		return err
	}
	g2 := prometheus.NewGauge(prometheus.GaugeOpts{Name: "gocl_replacement", Help: "The second PUT."})
	g2.Set(2)
	return push.New(url, "go_job").Grouping("env", "prod").Collector(g2).Push()
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: pushclient URL push|add|replace|delete")
		os.Exit(2)
	}
	url := os.Args[1]
	var err error
	switch os.Args[2] {
	case "push":
		err = stepPush(url)
	case "add":
		err = stepAdd(url)
	case "replace":
		err = stepReplace(url)
	case "delete":
		err = mainGroup(url).Delete()
	default:
		err = fmt.Errorf("unknown step %q", os.Args[2])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pushclient:", err)
		os.Exit(1)
	}
}
