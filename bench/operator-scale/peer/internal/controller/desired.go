package controller

// What should exist for a ModelDeployment: the same ConfigMap, Service, Deployment and NetworkPolicy as
// Ballast's src/operator/serving/desired-state.ts (names, labels, owner reference, containers, args, volumes).

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

const (
	serverHealthPort       = 9000
	sidecarMonitoringPort  = 9090
	serverSocketDir        = "/run/ballast/server"
	serverSocket           = serverSocketDir + "/model.sock"
	feedbackTokenDir       = "/etc/ballast-feedback"
	monitoringConfigDir    = "/etc/ballast"
	pvcMountRoot           = "/mnt/models"
	requestLogDir          = "/run/ballast/requests"
	scratchDir             = "/run/ballast/tmp"
	defaultLogMaxBytes     = 1 << 30
	defaultLogSegmentBytes = 64 << 20
	monitoringConfigKey    = "monitoring.json"
	webIdentityVolume      = "s3-web-identity"
	webIdentityDir         = "/var/run/secrets/ballast.dev/s3-web-identity"
	webIdentityFile        = "token"
	webIdentityTokenS      = 3600
	servingUID             = 65532
	sidecarShutdownDelayS  = 5
	drainTimeoutS          = 10
	serverShutdownDelayS   = sidecarShutdownDelayS + drainTimeoutS
	terminationGracePeriod = serverShutdownDelayS + drainTimeoutS + 5
)

// prometheusScrape lets a Prometheus without prometheus-operator scrape the sidecar's monitoring port.
var prometheusScrape = map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": fmt.Sprint(sidecarMonitoringPort), "prometheus.io/path": "/metrics"}

// storeEnvNames are the variables the model store reads, whoever sets them (Ballast's STORE_ENV_NAMES): the
// sidecar gets these of the user's env and nothing else of it.
var storeEnvNames = map[string]bool{
	"AWS_ENDPOINT_URL_S3": true, "AWS_ENDPOINT_URL": true, "AWS_REGION": true, "AWS_DEFAULT_REGION": true, "BALLAST_S3_FORCE_PATH_STYLE": true,
	"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true, "AWS_WEB_IDENTITY_TOKEN_FILE": true, "AWS_ROLE_ARN": true,
	"AWS_ROLE_SESSION_NAME": true, "AWS_ENDPOINT_URL_STS": true, "AWS_STS_REGIONAL_ENDPOINTS": true,
	"BALLAST_ALLOW_INSECURE_HTTP": true, "BALLAST_HTTP_MAX_BYTES": true,
}

// storeEnv is what spec.model.s3 sets for the pods (Ballast's storeEnv): endpoint, region, addressing style, the
// web identity role and token file, and the credentials as references to the user's Secret.
func storeEnv(md *unstructured.Unstructured) []corev1.EnvVar {
	s3, ok, _ := unstructured.NestedMap(md.Object, "spec", "model", "s3")
	if !ok {
		return nil
	}
	var env []corev1.EnvVar
	add := func(name, value string) {
		if value != "" {
			env = append(env, corev1.EnvVar{Name: name, Value: value})
		}
	}
	add("AWS_ENDPOINT_URL_S3", str(s3, "endpoint"))
	add("AWS_REGION", str(s3, "region"))
	if v, ok, _ := unstructured.NestedBool(s3, "forcePathStyle"); ok {
		add("BALLAST_S3_FORCE_PATH_STYLE", fmt.Sprint(v))
	}
	if roleArn := str(s3, "webIdentity", "roleArn"); roleArn != "" {
		add("AWS_ROLE_ARN", roleArn)
		add("AWS_WEB_IDENTITY_TOKEN_FILE", webIdentityDir+"/"+webIdentityFile)
		add("AWS_ENDPOINT_URL_STS", str(s3, "webIdentity", "stsEndpoint"))
	}
	if secret := str(s3, "credentialsSecretRef", "name"); secret != "" {
		ref := func(key string, optional bool) corev1.EnvVar {
			sel := &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key}
			if optional {
				sel.Optional = ptr.To(true)
			}
			return corev1.EnvVar{Name: key, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: sel}}
		}
		env = append(env, ref("AWS_ACCESS_KEY_ID", false), ref("AWS_SECRET_ACCESS_KEY", false), ref("AWS_SESSION_TOKEN", true))
	}
	return env
}

// storeVolume is the ServiceAccount token projected for the web identity role's audience (Ballast's storeVolume).
func storeVolume(md *unstructured.Unstructured) (*corev1.Volume, *corev1.VolumeMount) {
	if field(md.Object, "spec", "model", "s3", "webIdentity") == nil {
		return nil, nil
	}
	audience := str(md.Object, "spec", "model", "s3", "webIdentity", "audience")
	if audience == "" {
		audience = "sts.amazonaws.com"
	}
	return &corev1.Volume{Name: webIdentityVolume, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{
			ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: audience, ExpirationSeconds: ptr.To(int64(webIdentityTokenS)), Path: webIdentityFile},
		}}}}},
		&corev1.VolumeMount{Name: webIdentityVolume, MountPath: webIdentityDir, ReadOnly: true}
}

func selectorLabels(name string) map[string]string {
	return map[string]string{"ballast.dev/model-deployment": name, "app.kubernetes.io/component": "serving"}
}

func selectorString(name string) string {
	return "ballast.dev/model-deployment=" + name + ",app.kubernetes.io/component=serving"
}

func commonLabels(md *unstructured.Unstructured) map[string]string {
	l := map[string]string{
		"app.kubernetes.io/name":       "ballast",
		"app.kubernetes.io/instance":   md.GetName(),
		"app.kubernetes.io/managed-by": "ballast-operator",
		"ballast.dev/model":            str(md.Object, "spec", "model", "name"),
	}
	for k, v := range selectorLabels(md.GetName()) {
		l[k] = v
	}
	return l
}

func objectMeta(md *unstructured.Unstructured, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:      name,
		Namespace: md.GetNamespace(),
		Labels:    commonLabels(md),
		OwnerReferences: []metav1.OwnerReference{{
			APIVersion: ModelDeploymentGVK.GroupVersion().String(), Kind: ModelDeploymentGVK.Kind,
			Name: md.GetName(), UID: md.GetUID(), Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
		}},
	}
}

var fixedDriftThresholds = map[string]float64{"ks": 0.05, "psi": 0.1, "wasserstein": 0.1, "jensenshannon": 0.1, "chisquare": 0.05}

// monitoringConfig is what the sidecar reads from monitoring.json: the monitoring spec with defaults resolved.
func monitoringConfig(md *unstructured.Unstructured) map[string]any {
	m, _, _ := unstructured.NestedMap(md.Object, "spec", "monitoring")
	drift, _, _ := unstructured.NestedMap(m, "drift")
	method, _ := drift["method"].(string)
	driftOut := map[string]any{"method": method, "thresholdMode": drift["thresholdMode"], "correction": drift["correction"]}
	if drift["thresholdMode"] == "fixed" {
		if t, ok := drift["threshold"]; ok {
			driftOut["threshold"] = t
		} else if t, ok := fixedDriftThresholds[method]; ok {
			driftOut["threshold"] = t
		}
	}
	accuracyMetric := m["accuracyMetric"]
	if accuracyMetric == nil {
		accuracyMetric = map[bool]string{true: "accuracy", false: "rmse"}[m["task"] == "classification"]
	}
	model := map[string]any{"name": str(md.Object, "spec", "model", "name"), "storageUri": str(md.Object, "spec", "model", "storageUri")}
	if v := str(md.Object, "spec", "model", "version"); v != "" {
		model["version"] = v
	}
	return withoutNil(map[string]any{
		"modelDeployment": map[string]any{"namespace": md.GetNamespace(), "name": md.GetName()},
		"model":           model,
		"features":        m["features"],
		"labelField":      m["labelField"],
		"task":            m["task"],
		"accuracyMetric":  accuracyMetric,
		"reference":       m["reference"],
		"window":          m["window"],
		"drift":           driftOut,
		"scrapeInterval":  m["scrapeInterval"],
	})
}

// withoutNil drops unset fields, as JSON.stringify drops Ballast's undefined ones.
func withoutNil(m map[string]any) map[string]any {
	for k, v := range m {
		if v == nil {
			delete(m, k)
		} else if inner, ok := v.(map[string]any); ok {
			withoutNil(inner)
		}
	}
	return m
}

func desiredConfigMap(md *unstructured.Unstructured) (*corev1.ConfigMap, error) {
	body, err := json.MarshalIndent(monitoringConfig(md), "", "  ")
	if err != nil {
		return nil, err
	}
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: objectMeta(md, md.GetName()+"-monitoring"),
		Data:       map[string]string{monitoringConfigKey: string(body) + "\n"},
	}, nil
}

func servingPort(md *unstructured.Unstructured) int32 {
	p, ok := num(md.Object, "spec", "serving", "port")
	if !ok {
		return 8080
	}
	return int32(p)
}

func desiredService(md *unstructured.Unstructured) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: objectMeta(md, md.GetName()),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: selectorLabels(md.GetName()),
			Ports:    []corev1.ServicePort{{Name: "http", Port: servingPort(md), TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP}},
		},
	}
}

// desiredNetworkPolicy admits anyone to the serving port and nobody to the monitoring port (the peer runs
// outside the cluster, as Ballast's operator does in the bench: no operator namespace to admit).
func desiredNetworkPolicy(md *unstructured.Unstructured) *networkingv1.NetworkPolicy {
	tcp := corev1.ProtocolTCP
	port := intstr.FromInt32(servingPort(md))
	return &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: objectMeta(md, md.GetName()+"-serving"),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: selectorLabels(md.GetName())},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: &port, Protocol: &tcp}}}},
		},
	}
}

// decodeInto converts a field of the (schema-validated) spec into a typed Kubernetes value.
func decodeInto(v any, into any) error {
	m, ok := v.(map[string]any)
	if !ok {
		if v == nil {
			return nil
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		return json.Unmarshal(b, into)
	}
	return runtime.DefaultUnstructuredConverter.FromUnstructured(m, into)
}

func contentHash(v any) string {
	b, _ := json.Marshal(v) // map keys are sorted by encoding/json: canonical enough for a hash
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:16]
}

func desiredDeployment(md *unstructured.Unstructured, defaultImage string) (*appsv1.Deployment, error) {
	name := md.GetName()
	spec := md.Object
	storageURI := str(spec, "spec", "model", "storageUri")
	modelName := str(spec, "spec", "model", "name")
	image := str(spec, "spec", "serving", "image")
	if image == "" {
		image = defaultImage
	}
	version := str(spec, "spec", "model", "version")
	if version == "" {
		version = str(spec, "status", "targetVersion")
	}
	pullPolicy := corev1.PullPolicy(str(spec, "spec", "serving", "imagePullPolicy"))
	var claim string
	if rest, ok := strings.CutPrefix(storageURI, "pvc://"); ok {
		claim, _, _ = strings.Cut(rest, "/")
	}
	logToStore := claim != "" || strings.HasPrefix(storageURI, "file://")
	// An s3:// store cannot be appended to: the sidecar logs to the emptyDir and ships each sealed segment there.
	shipLog := strings.HasPrefix(storageURI, "s3://")
	identityVolume, identityMount := storeVolume(md)
	cm, err := desiredConfigMap(md)
	if err != nil {
		return nil, err
	}
	podEnv := []corev1.EnvVar{
		{Name: "TMPDIR", Value: scratchDir},
		{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
	}
	var userEnv []corev1.EnvVar
	if err := decodeInto(field(spec, "spec", "serving", "env"), &userEnv); err != nil {
		return nil, fmt.Errorf("spec.serving.env: %w", err)
	}
	// The store's endpoint and credentials win over a user's variable of the same name, like the pod's own.
	ownEnv := append(append([]corev1.EnvVar{}, podEnv...), storeEnv(md)...)
	env := append([]corev1.EnvVar{}, ownEnv...)
	sidecarEnv := append([]corev1.EnvVar{}, ownEnv...)
	for _, e := range userEnv {
		if !containsEnv(ownEnv, e.Name) {
			env = append(env, e)
			if storeEnvNames[e.Name] {
				sidecarEnv = append(sidecarEnv, e)
			}
		}
	}
	var resources corev1.ResourceRequirements
	if err := decodeInto(field(spec, "spec", "serving", "resources"), &resources); err != nil {
		return nil, fmt.Errorf("spec.serving.resources: %w", err)
	}
	versionArgs := []string{}
	if version != "" {
		versionArgs = []string{"--version", version}
	}
	shutdown := func(delay int) []string {
		return []string{"--shutdown-delay", fmt.Sprintf("%ds", delay), "--drain-timeout", fmt.Sprintf("%ds", drainTimeoutS)}
	}
	security := &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true), RunAsNonRoot: ptr.To(true),
		Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	probe := func(path, port string, period, failures int32) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString(port)}}, PeriodSeconds: period, FailureThreshold: failures}
	}
	serverArgs := append(append([]string{"serve", "--store", storageURI, "--model", modelName}, versionArgs...),
		"--socket", serverSocket, "--host", "$(POD_IP)", "--health-port", fmt.Sprint(serverHealthPort))
	serverArgs = append(append(serverArgs, shutdown(serverShutdownDelayS)...), "--pvc-mount-root", pvcMountRoot)
	serverMounts := []corev1.VolumeMount{{Name: "server-socket", MountPath: serverSocketDir}, {Name: "tmp", MountPath: scratchDir}}
	if claim != "" {
		serverMounts = append(serverMounts, corev1.VolumeMount{Name: "model-store", MountPath: pvcMountRoot + "/" + claim, ReadOnly: true})
	}
	if identityMount != nil {
		serverMounts = append(serverMounts, *identityMount)
	}
	server := corev1.Container{
		Name: "server", Image: image, ImagePullPolicy: pullPolicy, Args: serverArgs, Env: env, Resources: resources,
		Ports:           []corev1.ContainerPort{{Name: "health", ContainerPort: serverHealthPort, Protocol: corev1.ProtocolTCP}},
		StartupProbe:    probe("/v2/health/live", "health", 2, 60),
		ReadinessProbe:  probe("/v2/health/ready", "health", 5, 3),
		LivenessProbe:   probe("/v2/health/live", "health", 10, 3),
		SecurityContext: security, VolumeMounts: serverMounts,
		// A start failure's last words reach the pod status.
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	windowSize, _ := num(spec, "spec", "monitoring", "window", "size")
	var windowMs int64
	if d := str(spec, "spec", "monitoring", "window", "duration"); d != "" {
		parsed, err := time.ParseDuration(d)
		if err != nil {
			return nil, fmt.Errorf("spec.monitoring.window.duration %q: %w", d, err)
		}
		windowMs = parsed.Milliseconds()
	}
	feedbackSecret := str(spec, "spec", "monitoring", "feedbackAuth", "secretRef", "name")
	sidecarArgs := append(append([]string{"sidecar", "--upstream", "unix:" + serverSocket, "--store", storageURI, "--model", modelName, "--modeldeployment", name}, versionArgs...),
		"--host", "$(POD_IP)", "--port", fmt.Sprint(servingPort(md)), "--monitoring-port", fmt.Sprint(sidecarMonitoringPort))
	sidecarArgs = append(sidecarArgs, shutdown(sidecarShutdownDelayS)...)
	if feedbackSecret != "" {
		sidecarArgs = append(sidecarArgs, "--feedback-token-file", feedbackTokenDir+"/token")
	}
	if logToStore {
		sidecarArgs = append(sidecarArgs, "--log-to-store")
	} else {
		sidecarArgs = append(sidecarArgs, "--data-dir", requestLogDir)
	}
	if shipLog {
		sidecarArgs = append(sidecarArgs, "--ship-log")
		if spool, ok := num(spec, "spec", "model", "s3", "logSpoolBytes"); ok && spool > 0 {
			sidecarArgs = append(sidecarArgs, "--log-max-bytes", fmt.Sprint(spool))
		}
	}
	sidecarArgs = append(sidecarArgs, "--pvc-mount-root", pvcMountRoot, "--monitoring-config", monitoringConfigDir+"/"+monitoringConfigKey,
		"--window-size", fmt.Sprint(windowSize), "--window-duration", fmt.Sprintf("%dms", windowMs))
	sidecarMounts := []corev1.VolumeMount{{Name: "monitoring-config", MountPath: monitoringConfigDir, ReadOnly: true}, {Name: "server-socket", MountPath: serverSocketDir}}
	if feedbackSecret != "" {
		sidecarMounts = append(sidecarMounts, corev1.VolumeMount{Name: "feedback-token", MountPath: feedbackTokenDir, ReadOnly: true})
	}
	if !logToStore {
		sidecarMounts = append(sidecarMounts, corev1.VolumeMount{Name: "request-log", MountPath: requestLogDir})
	}
	sidecarMounts = append(sidecarMounts, corev1.VolumeMount{Name: "tmp", MountPath: scratchDir})
	if claim != "" {
		sidecarMounts = append(sidecarMounts, corev1.VolumeMount{Name: "model-store", MountPath: pvcMountRoot + "/" + claim, ReadOnly: !logToStore})
	}
	if identityMount != nil {
		sidecarMounts = append(sidecarMounts, *identityMount)
	}
	sidecar := corev1.Container{
		Name: "sidecar", Image: image, ImagePullPolicy: pullPolicy, Args: sidecarArgs, Env: sidecarEnv,
		Ports: []corev1.ContainerPort{
			{Name: "http", ContainerPort: servingPort(md), Protocol: corev1.ProtocolTCP},
			{Name: "monitoring", ContainerPort: sidecarMonitoringPort, Protocol: corev1.ProtocolTCP},
		},
		ReadinessProbe:  probe("/v1/sidecar/ready", "http", 5, 3),
		LivenessProbe:   probe("/v1/sidecar/live", "http", 10, 3),
		SecurityContext: security, VolumeMounts: sidecarMounts,
	}
	volumes := []corev1.Volume{
		{Name: "monitoring-config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: name + "-monitoring"}}}},
		{Name: "server-socket", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	if feedbackSecret != "" {
		volumes = append(volumes, corev1.Volume{Name: "feedback-token", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: feedbackSecret, DefaultMode: ptr.To(int32(0o440)),
			Items: []corev1.KeyToPath{{Key: str(spec, "spec", "monitoring", "feedbackAuth", "secretRef", "key"), Path: "token"}},
		}}})
	}
	if !logToStore {
		// The sidecar's own bound plus two 64 MiB segments, as Ballast sizes it: the bound acts before eviction.
		logBound := int64(defaultLogMaxBytes)
		if spool, ok := num(spec, "spec", "model", "s3", "logSpoolBytes"); ok && shipLog && spool > 0 {
			logBound = spool
		}
		volumes = append(volumes, corev1.Volume{Name: "request-log", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
			SizeLimit: resource.NewQuantity(logBound+2*defaultLogSegmentBytes, resource.DecimalSI),
		}}})
	}
	volumes = append(volumes, corev1.Volume{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	if claim != "" {
		volumes = append(volumes, corev1.Volume{Name: "model-store", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim, ReadOnly: !logToStore}}})
	}
	if identityVolume != nil {
		volumes = append(volumes, *identityVolume)
	}
	podSpec := corev1.PodSpec{
		ServiceAccountName:            str(spec, "spec", "serving", "serviceAccountName"),
		TerminationGracePeriodSeconds: ptr.To(int64(terminationGracePeriod)),
		AutomountServiceAccountToken:  ptr.To(false),
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To(int64(servingUID)), RunAsGroup: ptr.To(int64(servingUID)), FSGroup: ptr.To(int64(servingUID)),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: []corev1.Container{server, sidecar},
		Volumes:    volumes,
	}
	if err := decodeInto(field(spec, "spec", "serving", "nodeSelector"), &podSpec.NodeSelector); err != nil {
		return nil, fmt.Errorf("spec.serving.nodeSelector: %w", err)
	}
	if err := decodeInto(field(spec, "spec", "serving", "tolerations"), &podSpec.Tolerations); err != nil {
		return nil, fmt.Errorf("spec.serving.tolerations: %w", err)
	}
	if a := field(spec, "spec", "serving", "affinity"); a != nil {
		podSpec.Affinity = &corev1.Affinity{}
		if err := decodeInto(a, podSpec.Affinity); err != nil {
			return nil, fmt.Errorf("spec.serving.affinity: %w", err)
		}
	}
	depSpec := appsv1.DeploymentSpec{
		RevisionHistoryLimit: ptr.To(int32(3)),
		Selector:             &metav1.LabelSelector{MatchLabels: selectorLabels(name)},
		Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxUnavailable: ptr.To(intstr.FromInt32(0)), MaxSurge: ptr.To(intstr.FromInt32(1)),
		}},
		Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: commonLabels(md), Annotations: templateAnnotations(contentHash(cm.Data))},
			Spec:       podSpec,
		},
	}
	// Scale delegated to someone else (an HPA): leave replicas out, so the apply does not own the field.
	if md.GetAnnotations()["ballast.dev/replicas-managed-by"] != "external" {
		replicas, _ := num(spec, "spec", "serving", "replicas")
		depSpec.Replicas = ptr.To(int32(replicas))
	}
	return &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: objectMeta(md, name+"-serving"), Spec: depSpec}, nil
}

func templateAnnotations(configHash string) map[string]string {
	a := map[string]string{"ballast.dev/monitoring-config-hash": configHash}
	for k, v := range prometheusScrape {
		a[k] = v
	}
	return a
}

func containsEnv(env []corev1.EnvVar, name string) bool {
	for _, e := range env {
		if e.Name == name {
			return true
		}
	}
	return false
}
