package controller

import (
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
)

// The peer must read a Deployment as Ballast's deploymentProgress does (src/operator/serving/status.ts), or the
// bench would compare operators that write different statuses.
func TestDeploymentProgressReadsADeploymentAsBallastDoes(t *testing.T) {
	dep := func(replicas int32, st appsv1.DeploymentStatus) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "m-serving"}, Spec: appsv1.DeploymentSpec{Replicas: ptr.To(replicas)}, Status: st}
	}
	cases := []struct {
		name   string
		dep    *appsv1.Deployment
		ready  bool
		reason string
	}{
		{"scaled to zero", dep(0, appsv1.DeploymentStatus{}), true, "ScaledToZero"},
		{"all pods ready", dep(2, appsv1.DeploymentStatus{Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2}), true, "DeploymentAvailable"},
		{"rolling out", dep(2, appsv1.DeploymentStatus{Replicas: 2, UpdatedReplicas: 1}), false, "DeploymentProgressing"},
		{"old pods terminating", dep(1, appsv1.DeploymentStatus{Replicas: 2, UpdatedReplicas: 1}), false, "DeploymentProgressing"},
		{"pods not ready", dep(2, appsv1.DeploymentStatus{Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 1, AvailableReplicas: 1}), false, "ServingNotReady"},
		{"deadline exceeded", dep(1, appsv1.DeploymentStatus{Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentProgressing, Status: "False", Reason: "ProgressDeadlineExceeded"},
		}}), false, "DeploymentUnavailable"},
	}
	for _, c := range cases {
		p := deploymentProgress(c.dep)
		if p.ready != c.ready || p.reason != c.reason {
			t.Errorf("%s: got ready=%v reason=%s, want ready=%v reason=%s", c.name, p.ready, p.reason, c.ready, c.reason)
		}
	}
}

// A second reconcile that finds nothing new must not write status again (one write per change, as Ballast).
func TestSetServingStatusReportsAChangeOnlyOnce(t *testing.T) {
	md := NewModelDeployment()
	md.SetName("m-0")
	md.SetGeneration(1)
	_ = unstructured.SetNestedField(md.Object, "v3", "spec", "model", "version")
	dep := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(0))}}
	if changed, err := setServingStatus(md, dep); err != nil || !changed {
		t.Fatalf("first status: changed=%v err=%v, want a change", changed, err)
	}
	if changed, err := setServingStatus(md, dep); err != nil || changed {
		t.Fatalf("same Deployment again: changed=%v err=%v, want no change", changed, err)
	}
	if got := str(md.Object, "status", "selector"); got != "ballast.dev/model-deployment=m-0,app.kubernetes.io/component=serving" {
		t.Errorf("status.selector = %q", got)
	}
	if got := str(md.Object, "status", "servingVersion"); got != "v3" {
		t.Errorf("status.servingVersion = %q, want v3", got)
	}
	if gen, _ := num(md.Object, "status", "observedGeneration"); gen != 1 {
		t.Errorf("status.observedGeneration = %d, want 1", gen)
	}
	// The first status carries what Ballast folds into its first write: the loop's state and monitoring's Unknown.
	if got := str(md.Object, "status", "loop", "phase"); got != "Stable" {
		t.Errorf("status.loop.phase = %q, want Stable", got)
	}
	conditions, _, _ := unstructured.NestedSlice(md.Object, "status", "conditions")
	var types []string
	for _, c := range conditions {
		types = append(types, c.(map[string]any)["type"].(string))
	}
	want := []string{"Ready", "Reconciling", "Stalled", "Serving", "DriftDetected", "Degraded", "LoopHalted", "CandidateReady", "Retraining"}
	if fmt.Sprint(types) != fmt.Sprint(want) {
		t.Errorf("condition types %v, want %v (Ballast's order)", types, want)
	}
}
