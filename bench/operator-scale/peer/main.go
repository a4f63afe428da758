// ballast-peer: the operator a Go team would write instead of Ballast's serving controller, for
// bench/operator-scale only. controller-runtime, kubebuilder layout: this file wires the manager, the
// reconciler lives in internal/controller. It reconciles the same ModelDeployment CRD into the same
// ConfigMap, Service, Deployment and NetworkPolicy (server-side apply) and writes the same status fields.
package main

import (
	"errors"
	"flag"
	"net/http"
	"os"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"ballast.dev/bench/operator-scale/peer/internal/controller"
)

func main() {
	var namespace, metricsAddr, probeAddr, defaultImage string
	var workers int
	var qps float64
	// --kubeconfig is controller-runtime's own flag (else $KUBECONFIG, else in-cluster).
	flag.StringVar(&namespace, "namespace", "", "the one namespace to watch (all when empty)")
	flag.IntVar(&workers, "workers", 16, "concurrent reconciles (Ballast's --workers)")
	// Ballast's client has no client-side rate limit; a negative QPS turns client-go's off too, so both
	// operators are bounded by the API server alone.
	flag.Float64Var(&qps, "qps", -1, "client-side requests per second (negative: unlimited)")
	flag.StringVar(&metricsAddr, "metrics-bind-address", "127.0.0.1:8080", "metrics endpoint")
	flag.StringVar(&probeAddr, "health-probe-bind-address", "127.0.0.1:8081", "/healthz and /readyz")
	flag.StringVar(&defaultImage, "default-image", "ghcr.io/ballast-dev/ballast:latest", "image when spec.serving.image is unset")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	log := ctrl.Log.WithName("setup")

	cfg, err := ctrl.GetConfig()
	if err != nil {
		log.Error(err, "loading kubeconfig")
		os.Exit(1)
	}
	cfg.QPS = float32(qps)

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		log.Error(err, "building the scheme")
		os.Exit(1)
	}
	cacheOpts := cache.Options{}
	if namespace != "" {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{namespace: {}}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Cache:                  cacheOpts,
		Metrics:                metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress: probeAddr,
	})
	if err != nil {
		log.Error(err, "creating the manager")
		os.Exit(1)
	}
	r := &controller.ModelDeploymentReconciler{
		Client:       mgr.GetClient(),
		Recorder:     mgr.GetEventRecorder("ballast-peer"),
		DefaultImage: defaultImage,
	}
	err = ctrl.NewControllerManagedBy(mgr).
		Named("serving").
		For(controller.NewModelDeployment()).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		Owns(&corev1.ConfigMap{}).
		Owns(&networkingv1.NetworkPolicy{}).
		WithOptions(crcontroller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
	if err != nil {
		log.Error(err, "creating the controller")
		os.Exit(1)
	}
	_ = mgr.AddHealthzCheck("healthz", healthz.Ping)
	// Ready once the caches have synced, as Ballast's /readyz.
	_ = mgr.AddReadyzCheck("readyz", func(req *http.Request) error {
		if !mgr.GetCache().WaitForCacheSync(req.Context()) {
			return errors.New("caches not synced")
		}
		return nil
	})
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "running the manager")
		os.Exit(1)
	}
}
