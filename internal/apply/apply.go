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
// Before writing, Apply reads the object through the client given to it;
// with a manager's client that read is answered by the informer cache, which
// may lag the API server. So the read only picks the way to write, and the
// write itself is what refuses to take over a foreign object:
//
//   - Read says the object is missing: Apply creates it. Unlike an apply, a
//     create fails when the object exists, so an object someone made a
//     moment ago that the cache does not show yet is never overwritten. On
//     AlreadyExists Apply reads again through the API reader (WithAPIReader;
//     else the same client) and goes on as below with what it finds.
//   - Read finds the object, and its controller owner reference does not
//     carry the owner's UID: Apply returns a *ForeignObjectError and writes
//     nothing. A Deployment or Service a person created by hand under the
//     same name is never adopted or changed.
//   - Read finds an object the owner controls: Apply applies, with the UID
//     it read as a precondition, so that an object deleted and re-created by
//     someone else in between is refused by the API server instead of
//     adopted.
//
// Apply always writes when the object exists; Unchanged tells a caller
// beforehand, from the cache, that there is nothing to write, so that a
// reconcile of a steady app writes nothing. It compares the fields
// FieldManager owns on the object with the configuration (holdsIntent says
// why that catches every drift). Package traffic compares the Istio
// objects itself.
//
// A create records its fields under FieldManager with operation Update, not
// Apply, and with them the defaults the API server filled in. Both entries
// would own fields after a later apply, and a field that the apply no
// longer sets would stay forever, because server-side apply only removes
// fields nobody else owns. So right after a create Apply rewrites that
// entry into the Apply entry an apply of the configuration records
// (ownAsApplied), and whenever an owned object still has such an entry
// (kinds client-go has no schema for, or the rewrite met a conflict) Apply
// hands its fields to the Apply entry before applying, the way kubectl
// upgrades client-side-applied objects (package
// k8s.io/client-go/util/csaupgrade).
//
// With a manager's client, give the manager's cache TrimManagedFields as
// its transform, or none: Apply reads FieldManager's managedFields entries
// from what its client returns.
//
// Apply takes apply configurations from k8s.io/client-go/applyconfigurations
// and istio.io/client-go/pkg/applyconfiguration alike: it sends their JSON
// form as an unstructured request. The Istio apply configurations do not
// implement runtime.ApplyConfiguration, and the owner reference must be set
// on both kinds the same way, so one unstructured path is simpler than two
// typed ones.
package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/util/csaupgrade"
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

// Option configures Apply.
type Option func(*options)

type options struct {
	reader client.Reader
	memo   *Memo
}

// WithAPIReader gives Apply a reader that goes to the API server (a
// manager's GetAPIReader()), for the re-read after a create found the object
// already there. Without it, or with nil, Apply re-reads through its client;
// when that is a cache that has not seen the object yet, Apply returns an
// error to be retried, and still writes nothing.
func WithAPIReader(r client.Reader) Option {
	return func(o *options) { o.reader = r }
}

// Apply server-side applies obj as owned by owner. obj is an apply
// configuration (or any value whose JSON form is a whole object with
// apiVersion, kind, metadata.name and metadata.namespace); owner must have a
// UID and live in the same namespace, because owner references cannot cross
// namespaces. Any owner references in obj are replaced by the one to owner.
// An object that exists and is not controlled by owner is a
// *ForeignObjectError, and is left unchanged.
//
// Applying the same configuration again changes nothing on the server: no
// new resourceVersion, no new generation. Unchanged tells beforehand
// whether there is anything to apply at all.
func Apply(ctx context.Context, c client.Client, owner client.Object, obj any, opts ...Option) error {
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	reader := client.Reader(c)
	if o.reader != nil {
		reader = o.reader
	}

	u, ownerKind, err := intent(c, owner, obj)
	if err != nil {
		return err
	}
	gvk, key := u.GroupVersionKind(), client.ObjectKeyFromObject(u)

	existing, err := read(ctx, c, c.Scheme().New, gvk, key)
	if apierrors.IsNotFound(err) {
		var created bool
		existing, created, err = create(ctx, c, reader, u)
		if created {
			if done, err := ownAsApplied(ctx, c, existing, u); done || err != nil {
				return err
			}
		}
	}
	if err != nil {
		return err
	}
	if !controlledBy(existing, owner) {
		return foreign(gvk, key, owner, ownerKind)
	}
	if err := ownCreatedFields(ctx, c, gvk, existing); err != nil {
		return err
	}

	u.SetUID(existing.GetUID())
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		// The UID precondition fails when the object was deleted or
		// replaced since it was read; a replacement someone else made is
		// foreign, not an error to retry.
		if now, rerr := read(ctx, reader, c.Scheme().New, gvk, key); rerr == nil && now.GetUID() != existing.GetUID() && !controlledBy(now, owner) {
			return foreign(gvk, key, owner, ownerKind)
		}
		return fmt.Errorf("applying %s %s: %w", u.GetKind(), klog.KObj(u), err)
	}
	ctrl.LoggerFrom(ctx).V(4).Info("Applied object", "kind", u.GetKind(), "object", klog.KObj(u))
	return nil
}

// intent is obj as Apply writes it: unstructured, with the controller
// owner reference to owner. It checks owner and namespace, and returns the
// owner's kind too.
func intent(c client.Client, owner client.Object, obj any) (*unstructured.Unstructured, string, error) {
	u, err := toUnstructured(obj)
	if err != nil {
		return nil, "", err
	}
	ownerGVK, err := apiutil.GVKForObject(owner, c.Scheme())
	if err != nil {
		return nil, "", fmt.Errorf("owner %s: %w", klog.KObj(owner), err)
	}
	if owner.GetUID() == "" {
		return nil, "", fmt.Errorf("owner %s %s has no UID: it must be read from the API server", ownerGVK.Kind, klog.KObj(owner))
	}
	if u.GetNamespace() != owner.GetNamespace() {
		return nil, "", fmt.Errorf("%s %s: owner %s %s is in another namespace", u.GetKind(), klog.KObj(u), ownerGVK.Kind, klog.KObj(owner))
	}
	u.SetOwnerReferences([]metav1.OwnerReference{{
		APIVersion:         ownerGVK.GroupVersion().String(),
		Kind:               ownerGVK.Kind,
		Name:               owner.GetName(),
		UID:                owner.GetUID(),
		Controller:         ptr.To(true),
		BlockOwnerDeletion: ptr.To(true),
	}})
	return u, ownerGVK.Kind, nil
}

// create creates u, which a read did not find, and returns the object that
// then exists under its name, for the caller to check its controller: the
// one created (created is true), or on AlreadyExists the one found by
// reader.
func create(ctx context.Context, c client.Client, reader client.Reader, u *unstructured.Unstructured) (obj client.Object, created bool, err error) {
	obj = u.DeepCopy()
	err = c.Create(ctx, obj, client.FieldOwner(FieldManager))
	if err == nil {
		ctrl.LoggerFrom(ctx).V(4).Info("Created object", "kind", u.GetKind(), "object", klog.KObj(u))
		return obj, true, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return nil, false, fmt.Errorf("creating %s %s: %w", u.GetKind(), klog.KObj(u), err)
	}
	// Unstructured, because a manager's client does not cache unstructured
	// objects by default: without an API reader the read still reaches the
	// API server, where the object is known to exist.
	existing, err := read(ctx, reader, newUnstructured, u.GroupVersionKind(), client.ObjectKeyFromObject(u))
	if err != nil {
		// Deleted again, or not in the reader's cache yet: nothing is
		// known about its owner, so write nothing now.
		return nil, false, fmt.Errorf("%s %s exists but could not be read: %w", u.GetKind(), klog.KObj(u), err)
	}
	return existing, false, nil
}

// ownCreatedFields moves the fields obj's create recorded under
// FieldManager with operation Update to FieldManager's Apply entry (see the
// package documentation). It sends nothing when there is no such entry. It
// sends obj's resourceVersion along, so that a stale obj (a cache that has
// not seen the move yet, or a status write in between) fails with a
// conflict instead of overwriting newer managed fields; such a conflict is
// no error, because the entry is still there at the next Apply, which tries
// again with a fresher read.
//
// The patch replaces the whole managedFields list, built from obj's. That
// is safe with a cache that trims managedFields, because TrimManagedFields
// keeps every entry of an object that still has such an Update entry.
func ownCreatedFields(ctx context.Context, c client.Client, gvk schema.GroupVersionKind, obj client.Object) error {
	if !hasCreatedFields(obj) {
		return nil
	}
	patch, err := csaupgrade.UpgradeManagedFieldsPatch(obj, sets.New(FieldManager), FieldManager)
	if err != nil {
		return fmt.Errorf("managed fields of %s %s: %w", gvk.Kind, klog.KObj(obj), err)
	}
	if patch == nil {
		return nil
	}
	target := &unstructured.Unstructured{}
	target.SetGroupVersionKind(gvk)
	target.SetNamespace(obj.GetNamespace())
	target.SetName(obj.GetName())
	err = c.Patch(ctx, target, client.RawPatch(types.JSONPatchType, patch))
	if apierrors.IsConflict(err) {
		ctrl.LoggerFrom(ctx).V(4).Info("Object changed since it was read; taking over its created fields later", "kind", gvk.Kind, "object", klog.KObj(obj))
		return nil
	}
	if err != nil {
		return fmt.Errorf("taking over the created fields of %s %s: %w", gvk.Kind, klog.KObj(obj), err)
	}
	return nil
}

// ownAsApplied turns the managedFields entry of created, which Apply has
// just created from u, into the entry an apply of u records, and reports
// whether it did. A create records every field of the stored object under
// FieldManager with operation Update, the defaults the API server filled
// in included. Handing that to the Apply entry (ownCreatedFields) would
// make canaryop own the defaults until the next apply, so that would take
// a hand-over and an apply after every create. Instead the entry becomes an
// Apply entry with exactly u's fields, computed with client-go's schemas
// the way the API server computes an apply's (without the fields
// managedFields never record), in one patch: a created object costs two
// writes, and holds then what it would after an apply.
//
// It returns false, and sends nothing, for kinds client-go has no schema
// for (the Istio objects); and false when the object changed since it was
// created (a conflict, as in ownCreatedFields). Apply then goes on the old
// way.
func ownAsApplied(ctx context.Context, c client.Client, created client.Object, u *unstructured.Unstructured) (bool, error) {
	fields, err := appliedFieldSet(u)
	if err != nil {
		ctrl.LoggerFrom(ctx).V(5).Info("No schema to compute the applied fields; applying after the create", "kind", u.GetKind(), "object", klog.KObj(u), "reason", err.Error())
		return false, nil
	}
	entries := created.GetManagedFields()
	found := false
	for i, e := range entries {
		if isCreatedEntry(e) {
			entries[i] = metav1.ManagedFieldsEntry{
				Manager:    FieldManager,
				Operation:  metav1.ManagedFieldsOperationApply,
				APIVersion: e.APIVersion,
				Time:       e.Time,
				FieldsType: "FieldsV1",
				FieldsV1:   &metav1.FieldsV1{Raw: fields},
			}
			found = true
		}
	}
	if !found {
		return false, nil
	}
	patch, err := json.Marshal([]map[string]any{
		{"op": "replace", "path": "/metadata/managedFields", "value": entries},
		// As in csaupgrade: "replace", not "test", so that a changed
		// object fails with a conflict.
		{"op": "replace", "path": "/metadata/resourceVersion", "value": created.GetResourceVersion()},
	})
	if err != nil {
		return false, fmt.Errorf("managed fields of %s %s: %w", u.GetKind(), klog.KObj(u), err)
	}
	target := &unstructured.Unstructured{}
	target.SetGroupVersionKind(u.GroupVersionKind())
	target.SetNamespace(u.GetNamespace())
	target.SetName(u.GetName())
	err = c.Patch(ctx, target, client.RawPatch(types.JSONPatchType, patch))
	if apierrors.IsConflict(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("recording the applied fields of %s %s: %w", u.GetKind(), klog.KObj(u), err)
	}
	return true, nil
}

// hasCreatedFields reports whether obj has the entry a create under
// FieldManager records: operation Update on the object itself.
func hasCreatedFields(obj metav1.Object) bool {
	for _, e := range obj.GetManagedFields() {
		if isCreatedEntry(e) {
			return true
		}
	}
	return false
}

func isCreatedEntry(e metav1.ManagedFieldsEntry) bool {
	return e.Manager == FieldManager && e.Operation == metav1.ManagedFieldsOperationUpdate && e.Subresource == ""
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

// read gets the object of kind gvk at key through r. It reads the typed
// object when newObject (a scheme's New) knows the kind, so that a cached
// client shares the informer its controller already has, and the object's
// metadata only otherwise; the metadata carries all Apply needs (UID, owner
// references, managed fields).
func read(ctx context.Context, r client.Reader, newObject func(schema.GroupVersionKind) (runtime.Object, error), gvk schema.GroupVersionKind, key client.ObjectKey) (client.Object, error) {
	var obj client.Object
	if o, err := newObject(gvk); err == nil {
		if co, ok := o.(client.Object); ok {
			obj = co
		}
	}
	if obj == nil {
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(gvk)
		obj = m
	}
	if err := r.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, err
		}
		return nil, fmt.Errorf("reading %s %s: %w", gvk.Kind, key, err)
	}
	return obj, nil
}

// newUnstructured makes read fetch the whole object as unstructured.
func newUnstructured(gvk schema.GroupVersionKind) (runtime.Object, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	return u, nil
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
