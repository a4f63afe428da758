package controller

import (
	"context"
	"encoding/json"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
)

const fieldOwner = client.FieldOwner("ballast-peer")

// While pods come up, look again even if no event arrives (as Ballast's PROGRESS_RECHECK_MS).
const progressRecheck = 30 * time.Second

// ModelDeploymentReconciler reconciles a ModelDeployment into its serving objects, the controller-runtime way:
// read from the cache, server-side apply every desired object (the API server makes an unchanged apply a no-op),
// then write status when it changed.
type ModelDeploymentReconciler struct {
	client.Client
	Recorder     recorder.EventRecorder
	DefaultImage string
}

func (r *ModelDeploymentReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	md := NewModelDeployment()
	if err := r.Get(ctx, req.NamespacedName, md); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if md.GetDeletionTimestamp() != nil {
		return ctrl.Result{}, nil // owner references: the garbage collector deletes what we own
	}
	cm, err := desiredConfigMap(md)
	if err != nil {
		return ctrl.Result{}, err
	}
	dep, err := desiredDeployment(md, r.DefaultImage)
	if err != nil {
		return ctrl.Result{}, err
	}
	var existing appsv1.Deployment
	err = r.Get(ctx, types.NamespacedName{Namespace: md.GetNamespace(), Name: dep.Name}, &existing)
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	created := apierrors.IsNotFound(err)
	for _, obj := range []runtime.Object{cm, desiredService(md), dep, desiredNetworkPolicy(md)} {
		if err := r.apply(ctx, obj); err != nil {
			return ctrl.Result{}, err
		}
	}
	if created {
		r.Recorder.Eventf(md, nil, "Normal", "Created", "Apply", "created Deployment %s, Service %s, ConfigMap %s and NetworkPolicy %s",
			dep.Name, md.GetName(), cm.Name, md.GetName()+"-serving")
	}
	// The applied Deployment as the API server returned it carries the latest status we can know of.
	if dep.Status.ObservedGeneration < dep.Generation {
		// Not observed yet: the Deployment controller's status write wakes us (Ballast writes no status here either).
		return ctrl.Result{RequeueAfter: progressRecheck}, nil
	}
	changed, err := setServingStatus(md, dep)
	if err != nil {
		return ctrl.Result{}, err
	}
	if changed {
		if err := r.Status().Update(ctx, md); err != nil {
			return ctrl.Result{}, err // a 409 Conflict requeues with back-off, as kubebuilder's scaffold does
		}
	}
	if p := deploymentProgress(dep); !p.ready {
		return ctrl.Result{RequeueAfter: progressRecheck}, nil
	}
	log.FromContext(ctx).V(1).Info("serving is up to date")
	return ctrl.Result{}, nil
}

// apply server-side applies obj and reads the API server's answer back into it.
func (r *ModelDeploymentReconciler) apply(ctx context.Context, obj runtime.Object) error {
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{Object: raw}
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "status")
	if err := r.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), fieldOwner, client.ForceOwnership); err != nil {
		return err
	}
	return runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj)
}

func equalJSON(a, b any) bool {
	x, errA := json.Marshal(a)
	y, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(x) == string(y)
}
