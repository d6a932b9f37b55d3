// Package apply writes the objects canaryop owns with server-side apply,
// under one field manager, and refuses to take over objects it did not
// create.
//
// Every object is applied with field manager FieldManager ("canaryop") and
// forced ownership: canaryop is the only writer of the fields it sets, so a
// conflict means someone edited an owned object by hand and canaryop's
// intent wins. Every object gets a controller owner reference to its
// CanaryApp (controller and blockOwnerDeletion true), so Kubernetes garbage
// collects it with the CanaryApp.
//
// Before writing, Apply reads the object. If it exists and its controller
// owner reference does not carry the owner's UID, Apply returns a
// *ForeignObjectError and writes nothing: a Deployment or Service a person
// created by hand under the same name is never adopted or changed. The read
// goes through the client given to Apply; with a manager's cached client it
// is answered by the informer cache, so pass a client that reads from the API
// server when an object created a moment ago must be seen too.
//
// Apply takes apply configurations from k8s.io/client-go/applyconfigurations
// and istio.io/client-go/pkg/applyconfiguration alike: it sends their JSON
// form as an unstructured apply request. The Istio apply configurations do
// not implement runtime.ApplyConfiguration, and the owner reference must be
// set on both kinds the same way, so one unstructured path is simpler than
// two typed ones.
package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// FieldManager is the one field manager name canaryop applies with.
const FieldManager = "canaryop"

// ForeignObjectError says that an object canaryop wants to write already
// exists and is not controlled by the CanaryApp it would belong to. A person
// has to rename or delete one of the two; retrying does not help.
type ForeignObjectError struct {
	// GVK is the group, version and kind of the existing object.
	GVK schema.GroupVersionKind
	// Namespace and Name identify the existing object.
	Namespace, Name string
	// OwnerKind, OwnerNamespace and OwnerName identify the would-be owner.
	OwnerKind, OwnerNamespace, OwnerName string
}

func (e *ForeignObjectError) Error() string {
	return fmt.Sprintf("%s %s/%s exists and is not owned by %s %s/%s; canaryop never adopts objects it did not create",
		e.GVK.Kind, e.Namespace, e.Name, e.OwnerKind, e.OwnerNamespace, e.OwnerName)
}

// IsForeignObject reports whether err is or wraps a *ForeignObjectError.
func IsForeignObject(err error) bool {
	var f *ForeignObjectError
	return errors.As(err, &f)
}

// Apply server-side applies obj as owned by owner. obj is an apply
// configuration (or any value whose JSON form is a whole object with
// apiVersion, kind, metadata.name and metadata.namespace); owner must have a
// UID and live in the same namespace, because owner references cannot cross
// namespaces. Any owner references in obj are replaced by the one to owner.
//
// Applying the same configuration again changes nothing on the server: no
// new resourceVersion, no new generation.
func Apply(ctx context.Context, c client.Client, owner client.Object, obj any) error {
	u, err := toUnstructured(obj)
	if err != nil {
		return err
	}
	ownerGVK, err := apiutil.GVKForObject(owner, c.Scheme())
	if err != nil {
		return fmt.Errorf("owner %s: %w", klog.KObj(owner), err)
	}
	if owner.GetUID() == "" {
		return fmt.Errorf("owner %s %s has no UID: it must be read from the API server", ownerGVK.Kind, klog.KObj(owner))
	}
	if u.GetNamespace() != owner.GetNamespace() {
		return fmt.Errorf("%s %s: owner %s %s is in another namespace", u.GetKind(), klog.KObj(u), ownerGVK.Kind, klog.KObj(owner))
	}
	if err := checkOwner(ctx, c, owner, ownerGVK.Kind, u.GroupVersionKind(), client.ObjectKeyFromObject(u)); err != nil {
		return err
	}

	u.SetOwnerReferences([]metav1.OwnerReference{{
		APIVersion:         ownerGVK.GroupVersion().String(),
		Kind:               ownerGVK.Kind,
		Name:               owner.GetName(),
		UID:                owner.GetUID(),
		Controller:         ptr.To(true),
		BlockOwnerDeletion: ptr.To(true),
	}})
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying %s %s: %w", u.GetKind(), klog.KObj(u), err)
	}
	ctrl.LoggerFrom(ctx).V(4).Info("Applied object", "kind", u.GetKind(), "object", klog.KObj(u))
	return nil
}

// Delete deletes obj (only its kind, namespace and name are used) if it
// exists and is controlled by owner. A missing object is not an error; an
// object controlled by anything else is a *ForeignObjectError and is left
// alone. The delete carries the UID that was checked as a precondition, so a
// replacement created in between is not deleted either.
func Delete(ctx context.Context, c client.Client, owner client.Object, obj client.Object) error {
	ownerGVK, err := apiutil.GVKForObject(owner, c.Scheme())
	if err != nil {
		return fmt.Errorf("owner %s: %w", klog.KObj(owner), err)
	}
	gvk, err := apiutil.GVKForObject(obj, c.Scheme())
	if err != nil {
		return fmt.Errorf("object %s: %w", klog.KObj(obj), err)
	}
	key := client.ObjectKeyFromObject(obj)
	if err := c.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("reading %s %s: %w", gvk.Kind, key, err)
	}
	if !controlledBy(obj, owner) {
		return foreign(gvk, key, owner, ownerGVK.Kind)
	}
	err = c.Delete(ctx, obj,
		client.Preconditions{UID: ptr.To(obj.GetUID())},
		client.PropagationPolicy(metav1.DeletePropagationBackground))
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting %s %s: %w", gvk.Kind, key, err)
	}
	ctrl.LoggerFrom(ctx).V(4).Info("Deleted object", "kind", gvk.Kind, "object", key)
	return nil
}

// checkOwner returns a *ForeignObjectError when the object exists and is not
// controlled by owner. It reads the typed object when the client's scheme
// knows the kind, so that a cached client shares the informer its controller
// already has, and the object's metadata only otherwise.
func checkOwner(ctx context.Context, c client.Client, owner client.Object, ownerKind string, gvk schema.GroupVersionKind, key client.ObjectKey) error {
	var existing client.Object
	if o, err := c.Scheme().New(gvk); err == nil {
		if co, ok := o.(client.Object); ok {
			existing = co
		}
	}
	if existing == nil {
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(gvk)
		existing = m
	}
	if err := c.Get(ctx, key, existing); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("reading %s %s: %w", gvk.Kind, key, err)
	}
	if !controlledBy(existing, owner) {
		return foreign(gvk, key, owner, ownerKind)
	}
	return nil
}

func controlledBy(obj, owner client.Object) bool {
	ref := metav1.GetControllerOfNoCopy(obj)
	return ref != nil && ref.UID == owner.GetUID()
}

func foreign(gvk schema.GroupVersionKind, key client.ObjectKey, owner client.Object, ownerKind string) *ForeignObjectError {
	return &ForeignObjectError{
		GVK:            gvk,
		Namespace:      key.Namespace,
		Name:           key.Name,
		OwnerKind:      ownerKind,
		OwnerNamespace: owner.GetNamespace(),
		OwnerName:      owner.GetName(),
	}
}

// toUnstructured turns an apply configuration into the unstructured object
// sent to the API server. Going through JSON keeps exactly the fields the
// configuration sets: that is what server-side apply needs.
func toUnstructured(obj any) (*unstructured.Unstructured, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", obj, err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("decoding %T as an object: %w", obj, err)
	}
	if u.GetAPIVersion() == "" || u.GetName() == "" {
		return nil, fmt.Errorf("%T has no apiVersion or no name", obj)
	}
	return u, nil
}
