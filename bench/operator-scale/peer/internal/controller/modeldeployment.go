package controller

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The CRD is Ballast's (crds/); the peer reads it as unstructured instead of generating Go types from it,
// so both operators are held to the one schema source and its defaults (applied by the API server).
var ModelDeploymentGVK = schema.GroupVersionKind{Group: "ballast.dev", Version: "v1alpha1", Kind: "ModelDeployment"}

// NewModelDeployment is an empty ModelDeployment to read into.
func NewModelDeployment() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(ModelDeploymentGVK)
	return u
}

func str(obj map[string]any, fields ...string) string {
	v, _, _ := unstructured.NestedString(obj, fields...)
	return v
}

func num(obj map[string]any, fields ...string) (int64, bool) {
	v, ok, _ := unstructured.NestedFieldNoCopy(obj, fields...)
	switch n := v.(type) {
	case int64:
		return n, ok
	case float64:
		return int64(n), ok
	}
	return 0, false
}

func field(obj map[string]any, fields ...string) any {
	v, _, _ := unstructured.NestedFieldNoCopy(obj, fields...)
	return v
}
